"""Which frames GenD looks at: the middle first, then always the frame farthest from those taken.

Upstream's "at_least" mode (detector.py ``max_spread_permutation_pq``, start ``N // 2``)
orders all N frames greedily: the next frame is the one whose distance to the nearest
frame already taken is largest, the lowest index winning a tie. Frames are then tried in
that order until ``num_frames`` of them have a face. For 375 frames the order begins
187, 0, 374, 93, 280, 140, 327, 46.

Upstream keeps a distance per frame (quadratic in N). The same order follows from the
gaps between taken frames: inside a gap ``(a, b)`` the best frame is ``a + (b - a) // 2``
at distance ``(b - a) // 2``; before the first taken frame ``c`` it is frame 0 at distance
``c``, after the last one frame ``N - 1``. A heap of gaps keyed by (-distance, frame)
gives each next frame in O(log N), lazily, so a 4-hour video costs nothing extra.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator


def max_spread_order(n: int, start: int | None = None) -> Iterator[int]:
    """Frame indices ``0..n-1`` in upstream's max-spread order, beginning at ``start`` (default ``n // 2``)."""
    if n <= 0:
        return
    start = n // 2 if start is None else start
    if not 0 <= start < n:
        raise ValueError(f"start must be in [0, {n - 1}]")
    yield start
    heap: list[tuple[int, int, int, int]] = []  # (-distance, frame, gap start, gap end); -1/n mark open ends

    def push(lo: int, hi: int) -> None:
        if lo == -1:
            frame, dist = 0, hi
        elif hi == n:
            frame, dist = n - 1, n - 1 - lo
        else:
            frame, dist = lo + (hi - lo) // 2, (hi - lo) // 2
        if dist > 0:
            heapq.heappush(heap, (-dist, frame, lo, hi))

    push(-1, start)
    push(start, n)
    while heap:
        _, frame, lo, hi = heapq.heappop(heap)
        yield frame
        push(lo, frame)
        push(frame, hi)
