"""GEND-CLIP-L14: the adapter between the host's Detector interface and GenD.

file -> pictures (an image, or video frames from the middle outwards) -> largest
face's 5 landmarks -> aligned crop -> CLIP tensor -> ViT-L/14 -> L2 norm -> Linear
-> softmax -> mean over frames. Each frame is a window (start_frame, start_time,
score, face_box, track), so timelines and ensembles line up with LipFD's.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from itertools import islice

import numpy as np

from forensics_core.detector import PRECISION_DTYPES, Detector, resolve_runtime, weights_info_beside
from forensics_core.errors import InvalidOptionsError, MediaProcessingError
from forensics_core.logs import get_logger
from forensics_core.manifest import builtin_manifest
from forensics_core.progress import StageTimer
from forensics_core.progress import current as current_progress
from forensics_core.results import DetectionResult, label_for
from forensics_core.segments import segments_from_windows

from . import faces as faces_mod
from .align import AlignedFace, align_face
from .frames import frame_count, frames_per_pass, read_bgr, read_image
from .options import GenDOptions
from .preprocess import model_input
from .sampling import max_spread_order

log = get_logger("forensics.gend")

#: an automatic crop larger than this is not a face GenD can use (it would only be upsampled noise)
MAX_AUTO_CROP = 4096


@dataclass
class Sample:
    """One analysed face: where it is and what the model sees."""

    frame: int
    face: faces_mod.FaceChoice
    aligned: AlignedFace
    tensor: np.ndarray


class GenDDetector(Detector):
    card = builtin_manifest().card("GEND-CLIP-L14")
    Options = GenDOptions

    def __init__(self) -> None:
        super().__init__()
        self.net = None
        self._infer_lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------
    def _load(self, *, device: str, precision: str, weights=None, threads: int | None = None) -> None:
        import torch

        from forensics_core.weights import resolve_weights

        from .model import build
        from .weights import read_state_dict

        dev, precision = resolve_runtime(device, precision, self.card.id)
        if threads:
            torch.set_num_threads(threads)
        path = resolve_weights(self.card.id, self.card.weights, weights)
        weights_info = weights_info_beside(path)  # the sha256 for every result: recorded, else hashed beside the load
        state = read_state_dict(path)
        net = build(state, source=os.fspath(path), dtype=getattr(torch, PRECISION_DTYPES[precision]))
        del state
        self.net = net.to(dev)
        self.device, self.precision = dev, precision
        self.weights_info = weights_info()
        log.info("loaded", detector_id=self.card.id, device=dev, precision=precision, weights=self.weights_info.path)

    def _unload(self) -> None:
        self.net = None
        self.weights_info = None

    # -- analysis --------------------------------------------------------------------
    def _analyze(self, path: os.PathLike, options: GenDOptions) -> DetectionResult:
        from forensics_core.media import Limits, probe

        limits = Limits.from_env()
        stage = StageTimer()
        warnings: list[str] = []
        progress = current_progress()
        progress.stage("probe")
        with stage("probe"):
            info = probe(path, limits=limits)
        if not info.has_video:
            raise MediaProcessingError("no_video_stream", f"{path}: no picture to look at; GenD needs a face in an image or a video", path=path)
        common = {"detector_id": self.card.id, "detector_version": self.card.version, "media_path": os.fspath(path)}
        if info.still_image:
            samples, tried, fps, count = self._image_samples(path, options, stage), 1, 0.0, 1
        else:
            with stage("open"):
                count, fps = frame_count(path, info=info, limits=limits)
            samples, tried = self._video_samples(path, info, count, fps, options, stage, warnings)
        media = {**info.to_dict(), "frame_count": count, "fps": fps or None}
        if not samples:
            where = "the image" if info.still_image else f"any of the {tried} frames tried (of {count})"
            return DetectionResult.abstained(f"no face found on {where}", code="no_face", media=media,
                                             timings=stage.timings, processing_time=sum(stage.timings.values()),
                                             options=options.model_dump(mode="json"), **common)
        if not info.still_image and options.landmarks is None and len(samples) < options.num_frames:
            warnings.append(f"only {len(samples)} of the {tried} frames tried had a face (num_frames={options.num_frames})")
        progress.stage("model", total=len(samples), unit="face")
        logits = self._infer(np.stack([s.tensor for s in samples]), options.batch_size, stage, progress)
        probs = _softmax(logits)
        scores = [float(p) for p in probs[:, 1]]
        score = float(np.mean(probs, axis=0)[1])  # upstream: the mean of the per-frame softmax vectors, index 1
        windows = [self._window(i, s, logits[i], scores[i], fps, options.threshold, info.still_image) for i, s in enumerate(samples)]
        _offer_evidence(self.card.id, path, samples, windows, info.still_image)
        segments = [] if info.still_image else segments_from_windows(windows, options.threshold)
        return DetectionResult.scored(segments=segments,
            score=score, window_scores=scores, threshold=options.threshold, processing_time=sum(stage.timings.values()),
            frames_analyzed=len(samples), windows=windows, warnings=warnings, device=self.device,
            precision=self.precision, timings=stage.timings, media=media, options=options.model_dump(mode="json"), **common)

    def _image_samples(self, path, options: GenDOptions, stage) -> list[Sample]:
        with stage("decode"):
            image = read_image(path)
        if options.landmarks is not None:
            choice = faces_mod.given_landmarks(options.landmarks, still=True, frame_count=1)[0]
        else:
            with stage("faces"):
                choice = faces_mod.largest_in_image(image)
        if choice is None:
            return []
        sample = self._sample(0, image, choice, options, stage, given=options.landmarks is not None)
        return [sample] if sample else []

    def _video_samples(self, path, info, count: int, fps: float, options: GenDOptions, stage,
                       warnings: list[str]) -> tuple[list[Sample], int]:
        """The faces to analyse, in frame order, and how many frames were examined."""
        def read(indices):
            with stage("decode"):
                return read_bgr(path, indices)

        if options.landmarks is not None:
            given = faces_mod.given_landmarks(options.landmarks, still=False, frame_count=count)
            samples = []
            per_pass = frames_per_pass(info)
            for start in range(0, len(given), per_pass):
                frames = read(list(given)[start:start + per_pass])
                samples.extend(self._sample(i, frame[:, :, ::-1], given[i], options, stage, given=True) for i, frame in frames.items())
            lost = sorted(set(given) - {s.frame for s in samples})
            if lost:
                warnings.append(f"frames {lost[:10]} with given landmarks could not be decoded and were left out")
            return sorted(samples, key=lambda s: s.frame), len(given)
        order = max_spread_order(count)
        progress = current_progress()
        progress.stage("faces", total=options.num_frames, unit="face")
        video = faces_mod.VideoFaces(fps)
        per_pass = frames_per_pass(info)
        found: list[Sample] = []
        tried = 0
        while len(found) < options.num_frames and tried < min(count, options.max_frames_tried):
            # never more than still needed, so the faces kept are exactly the first num_frames in upstream's order
            batch = list(islice(order, min(per_pass, options.num_frames - len(found), options.max_frames_tried - tried)))
            if not batch:
                break
            tried += len(batch)
            frames = read(batch)
            for index in sorted(frames):
                frame = frames.pop(index)
                with stage("faces"):
                    face = video.largest(index, frame)
                sample = self._sample(index, frame[:, :, ::-1], face, options, stage) if face is not None else None
                if sample is not None:
                    found.append(sample)
                    progress.advance()
        with stage("faces"):
            tracked = video.tracks({s.frame: s.face for s in found})
        for s in found:
            s.face = tracked[s.frame]
        return sorted(found, key=lambda s: s.frame), tried

    def _sample(self, index: int, picture: np.ndarray, face: faces_mod.FaceChoice, options: GenDOptions, stage,
                *, given: bool = False) -> Sample | None:
        """Align and preprocess one face; None (or, for given landmarks, an error) when it cannot be aligned."""
        with stage("align"):
            aligned = align_face(picture, face.landmarks, options.crop_size, options.scale)
        if aligned is None or (options.crop_size == "auto" and aligned.size > MAX_AUTO_CROP):
            if given:
                raise InvalidOptionsError(f"landmarks for frame {index} do not describe a face that can be aligned",
                                          hint="give 5 distinct points: left eye, right eye, nose tip, left and right mouth corner")
            return None
        with stage("preprocess"):
            tensor = model_input(aligned.crop)
        return Sample(index, face, aligned, tensor)

    def _window(self, i: int, s: Sample, logits: np.ndarray, score: float, fps: float, threshold: float, still: bool) -> dict:
        start = s.frame / fps if fps and not still else 0.0
        end = (s.frame + 1) / fps if fps and not still else 0.0
        return {
            "index": i, "start_frame": s.frame, "end_frame": s.frame, "start_time": start, "end_time": end,
            "score": score, "prediction": label_for(score, threshold), "logits": [float(v) for v in logits],
            "face_box": s.face.box if s.face.box is not None else s.aligned.source_box(),
            "face_box_source": "detector" if s.face.box is not None else "crop",
            "track": s.face.track if s.face.track is not None else 0,
            "landmarks": [[float(x), float(y)] for x, y in s.face.landmarks],
            "crop_size": s.aligned.size, "inliers": s.aligned.inliers,
        }

    def _infer(self, batch: np.ndarray, chunk: int, stage, progress) -> np.ndarray:
        import torch

        net, dev = self.net, self.device
        out = []
        with self._infer_lock, torch.inference_mode(), stage("model"):
            dtype = next(net.tower.parameters()).dtype
            for start in range(0, len(batch), chunk):
                x = torch.from_numpy(batch[start:start + chunk]).to(dev, dtype)
                out.append(net.head(net.features(x).float()).float().cpu().numpy())
                progress.advance(len(x))
        return np.concatenate(out).astype(np.float64)

    @staticmethod
    def check_weights(path: str | os.PathLike) -> None:
        """A downloaded file's check before it enters the cache (`forensics pull`): the released layout, from the header."""
        from .weights import validate_checkpoint

        validate_checkpoint(path)

    def evidence(self, media_path, result, *, windows=None) -> list:
        """Each window's aligned 224 x 224 face, recomputed from the media (no model, no weights)."""
        from .evidence import recompute

        return recompute(media_path, result if isinstance(result, dict) else result.to_dict(), windows)


def _offer_evidence(detector_id: str, path, samples: list[Sample], windows: list[dict], still: bool) -> None:
    """Hand the faces just analysed to a report's capture, if one is listening (no second decode)."""
    from forensics_core.evidence_images import offer, wanted

    if wanted():
        from .evidence import image
        from .preprocess import resize_224

        offer(detector_id, path, [image(resize_224(s.aligned.crop), w, still) for s, w in zip(samples, windows)])


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
