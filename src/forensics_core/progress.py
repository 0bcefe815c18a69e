"""Progress of one analysis, told by the detector, shown by whoever runs it.

A detector names its stages as it enters them (LipFD: ``probe``, ``audio``,
``frames``, ``model``; ``frames+model`` when dense sampling interleaves them; a face
stage slots in by name) and advances a count within each. It never decides whether
or how progress is shown: it calls :func:`current`, which is a no-op unless the
caller installed a reporter with :func:`reporting`. The reporter travels in a
context variable, so ``Detector.analyze``'s signature does not change, and threads
started without copying the context (batch workers) report nothing.

:class:`TerminalProgress` draws one tqdm bar per stage on stderr; :func:`for_terminal`
returns it only when stderr is a terminal and the user did not ask for quiet, so
piped runs carry no progress bytes at all.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Protocol, runtime_checkable


class StageTimer:
    """Seconds per stage, summed into ``timings`` (a result's ``timings``); ``with timer("audio"):``.
    Safe to use from a decoding thread and the model's at once."""

    def __init__(self, timings: dict[str, float] | None = None):
        self.timings = {} if timings is None else timings
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.timings[name] = self.timings.get(name, 0.0) + seconds

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)


@runtime_checkable
class Progress(Protocol):
    """What a detector may tell about the file it is analysing."""

    def stage(self, name: str, total: float | None = None, unit: str = "it") -> None:
        """Enter stage ``name`` (ending the previous one); ``total`` in ``unit``s, if known."""

    def advance(self, n: float = 1) -> None:
        """``n`` more units of the current stage are done (callable from any thread)."""

    def close(self) -> None:
        """The analysis is over."""


class NullProgress:
    """Shows nothing: the default."""

    def stage(self, name: str, total: float | None = None, unit: str = "it") -> None:
        pass

    def advance(self, n: float = 1) -> None:
        pass

    def close(self) -> None:
        pass


_NULL = NullProgress()
_current: contextvars.ContextVar[Progress] = contextvars.ContextVar("forensics_progress", default=_NULL)


def current() -> Progress:
    """The reporter of the analysis running in this context (a no-op by default)."""
    return _current.get()


@contextlib.contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Install ``progress`` for the code inside the block; close it afterwards."""
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)
        progress.close()


class TerminalProgress:
    """One tqdm bar per stage on ``stream`` (stderr), removed when the stage ends.

    The bar reads ``LABEL: STAGE  n/total unit [elapsed<ETA]``; a stage without a
    total shows its elapsed time. Updates from other threads (a decoding thread) are
    serialised by a lock.
    """

    def __init__(self, label: str, stream: IO[str] | None = None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self._bar = None
        self._lock = threading.Lock()

    def stage(self, name: str, total: float | None = None, unit: str = "it") -> None:
        from tqdm import tqdm

        cols, rows = self._size()
        with self._lock:
            if self._bar is not None:
                self._bar.close()
            self._bar = tqdm(total=total, desc=f"{self.label}: {name}", unit=unit, file=self.stream, leave=False,
                             ncols=cols, nrows=rows, mininterval=0.2, bar_format=None if total else "{desc} [{elapsed}]")

    def _size(self) -> tuple[int, int]:
        """The terminal's (columns, lines); 80 x 24 where it reports none: a fresh pseudo-terminal
        says 0 x 0, and tqdm would then draw nothing at all."""
        try:
            size = os.get_terminal_size(self.stream.fileno())
        except (AttributeError, OSError, ValueError):
            return 80, 24
        return size.columns or 80, size.lines or 24

    def advance(self, n: float = 1) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.update(n)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


def for_terminal(label: str, *, quiet: bool = False, stream: IO[str] | None = None) -> Progress:
    """A :class:`TerminalProgress` when ``stream`` (stderr) is a terminal and not ``quiet``, else a no-op."""
    stream = stream if stream is not None else sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced by something without isatty
        tty = False
    return TerminalProgress(label, stream) if tty and not quiet else NullProgress()
