"""Face alignment exactly as GenD's authors: 5 landmarks -> similarity -> square crop.

Upstream ``align_face`` (detector.py at e03532d, lines 133-212; docs/gend.md):

- a 5-point template (eyes, nose tip, mouth corners) in unit coordinates, placed in
  an ``S x S`` crop and shrunk by ``1/scale`` around its centre (scale 1.3);
- ``S`` is either fixed (``crop_size=256``) or follows the face (``"auto"``,
  upstream ``target_size=None``): ``round(mean(landmark distance / template
  distance over the 10 pairs) * scale)``;
- ``cv2.estimateAffinePartial2D(method=LMEDS)``: a robust fit that drops an outlier
  landmark (often the nose on real video; a plain least-squares fit over all five
  moves the logits by up to 3e-2), refined over the inliers;
- ``cv2.warpAffine`` bilinear, constant black border.

The authors ran OpenCV 4.12. OpenCV 5 (which this project installs) keeps the LMEDS
selection but replaced the refinement solver, which stops about 1e-5 short of the
optimum, and changed ``warpAffine``'s bilinear arithmetic (up to 3 grey levels on
10 % of the pixels; 2.7e-3 in the logits). So the inliers come from OpenCV, and
the two steps that moved are computed here as OpenCV 4 computes them: the refined
similarity is the least-squares optimum over the inliers (OpenCV 4.12's result to
1e-12), and :func:`warp_affine` is OpenCV 4's fixed-point bilinear warp, bit for bit
(its fixed-point positions computed here, the interpolation by ``cv2.remap``).

The warp works per channel, so aligning the RGB frame gives the same pixels as
upstream's BGR frame followed by its PNG round trip to RGB.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics_core.errors import InvalidOptionsError

#: left eye, right eye, nose tip, left mouth corner, right mouth corner (image left/right), unit square
TEMPLATE = np.array([[0.34, 0.46], [0.66, 0.46], [0.50, 0.64], [0.37, 0.82], [0.63, 0.82]], dtype=np.float32)
SCALE = 1.3
_PAIRS = np.triu_indices(5, k=1)


@dataclass(frozen=True)
class AlignedFace:
    crop: np.ndarray  # S x S x 3 uint8, same channel order as the input
    matrix: np.ndarray  # 2 x 3 float64, source pixels -> crop pixels
    inliers: list[int]  # LMEDS inlier mask, one per landmark
    size: int

    def source_box(self) -> list[float]:
        """The crop's footprint in the source, as an axis-aligned box ``[x0, y0, x1, y1]``.

        In continuous coordinates (pixel ``i`` spans ``[i, i+1)``), as the face stage's boxes.
        """
        inverse = np.linalg.inv(np.vstack([self.matrix, [0.0, 0.0, 1.0]]))[:2]
        lo, hi = -0.5, self.size - 0.5  # the crop's outer edges, in pixel-centre coordinates
        corners = np.array([[lo, lo, 1.0], [hi, lo, 1.0], [lo, hi, 1.0], [hi, hi, 1.0]]) @ inverse.T + 0.5
        return [float(corners[:, 0].min()), float(corners[:, 1].min()), float(corners[:, 0].max()), float(corners[:, 1].max())]


def auto_crop_size(landmarks: np.ndarray, scale: float = SCALE) -> int:
    """Upstream's face-dependent size: mean pairwise distance ratio to the template, times ``scale``, rounded."""
    pts = np.asarray(landmarks, dtype=np.float64)
    ours = np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=-1)[_PAIRS]
    theirs = np.linalg.norm(TEMPLATE[:, None, :] - TEMPLATE[None, :, :], axis=-1)[_PAIRS]
    return int(np.round(np.mean(ours / theirs) * scale))


def template_points(size: int, scale: float = SCALE, *, auto: bool) -> np.ndarray:
    """The template in crop pixels, float32, rounded step by step as upstream.

    Upstream updates a float32 array in place. With the auto size, ``S`` is a NumPy
    int64, so each step is computed in float64 and stored as float32; with a fixed
    size, ``S`` is a Python int and each step is float32 arithmetic. The two differ
    in the last bit for some sizes (256 among them), so both are reproduced.
    """
    margin = size * (scale - 1) / 2.0
    ratio = size / (size + 2 * margin)
    dst = TEMPLATE.copy()
    if auto:
        dst = (dst.astype(np.float64) * size).astype(np.float32)
        dst = (dst.astype(np.float64) + margin).astype(np.float32)
        return (dst.astype(np.float64) * ratio).astype(np.float32)
    dst = dst * np.float32(size)
    dst = dst + np.float32(margin)
    return dst * np.float32(ratio)


def similarity(landmarks: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, list[int]] | None:
    """LMEDS inliers from OpenCV, then the least-squares similarity over them; None for degenerate points.

    The similarity is ``[[a, -b, tx], [b, a, ty]]``; the points are float32, as OpenCV reads them.
    """
    import cv2

    src = np.asarray(landmarks, dtype=np.float32)
    dst = np.asarray(dst, dtype=np.float32)
    model, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS, refineIters=0)
    if model is None:
        return None
    inliers = np.asarray(mask).reshape(-1).astype(bool)
    if inliers.sum() < 2:
        return None
    x, y = src[inliers, 0].astype(np.float64), src[inliers, 1].astype(np.float64)
    u, v = dst[inliers, 0].astype(np.float64), dst[inliers, 1].astype(np.float64)
    one, zero = np.ones_like(x), np.zeros_like(x)
    design = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, np.concatenate([u, v]), rcond=None)
    matrix = np.array([[a, -b, tx], [b, a, ty]])
    if not np.all(np.isfinite(matrix)) or a * a + b * b == 0:
        return None
    return matrix, [int(i) for i in inliers]


#: OpenCV 4's fixed-point warp: coordinates with 10 fractional bits, 5 of them kept (32 sub-pixel steps)
_AB_BITS, _INTER_BITS = 10, 5


def _inverse(matrix: np.ndarray) -> np.ndarray:
    """Crop pixels -> source pixels, with OpenCV's operation order."""
    m = np.asarray(matrix, dtype=np.float64).reshape(-1).copy()
    d = m[0] * m[4] - m[1] * m[3]
    d = 1.0 / d if d != 0 else 0.0
    a11, a22 = m[4] * d, m[0] * d
    m[0], m[1], m[3], m[4] = a11, m[1] * -d, m[3] * -d, a22
    m[2], m[5] = -m[0] * m[2] - m[1] * m[5], -m[3] * m[2] - m[4] * m[5]
    return m


def fixed_point_maps(matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV 4 ``warpAffine``'s source positions: whole pixels (int16 x, y) and the 1/32 sub-pixel cell.

    Per output pixel ``(x, y)``: ``X = (rint((m1 y + m2) 1024) + 16 + rint(m0 x 1024)) >> 5`` and the
    same for ``Y``; the whole pixel is ``X >> 5``, the cell ``(Y & 31) * 32 + (X & 31)``.
    """
    m = _inverse(matrix)
    one, steps = 1 << _AB_BITS, 1 << _INTER_BITS
    xs = np.arange(size, dtype=np.float64)
    x0 = np.rint((m[1] * xs + m[2]) * one).astype(np.int64) + one // steps // 2
    y0 = np.rint((m[4] * xs + m[5]) * one).astype(np.int64) + one // steps // 2
    fx = (x0[:, None] + np.rint(m[0] * xs * one).astype(np.int64)[None, :]) >> (_AB_BITS - _INTER_BITS)
    fy = (y0[:, None] + np.rint(m[3] * xs * one).astype(np.int64)[None, :]) >> (_AB_BITS - _INTER_BITS)
    whole = np.stack([fx >> _INTER_BITS, fy >> _INTER_BITS], axis=-1)
    whole = np.clip(whole, np.iinfo(np.int16).min, np.iinfo(np.int16).max).astype(np.int16)
    cell = ((fy & (steps - 1)) * steps + (fx & (steps - 1))).astype(np.uint16)
    return whole, cell


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``cv2.warpAffine(image, matrix, (size, size), flags=INTER_LINEAR)`` as OpenCV 4 computes it.

    The positions are OpenCV 4's fixed-point ones (:func:`fixed_point_maps`); ``cv2.remap``
    with fixed-point maps then weighs the four neighbours with OpenCV's 15-bit bilinear
    table, unchanged in OpenCV 5 (tests/test_gend_preprocess.py checks it against an
    independent implementation of that arithmetic and against upstream's crops).
    Neighbours outside the image are black.
    """
    import cv2

    whole, cell = fixed_point_maps(matrix, size)
    return cv2.remap(np.ascontiguousarray(image), whole, cell, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def check_landmarks(landmarks) -> np.ndarray:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (5, 2) or not np.all(np.isfinite(pts)):
        raise InvalidOptionsError(f"landmarks must be 5 finite [x, y] points, got shape {pts.shape}",
                                  hint="order: left eye, right eye, nose tip, left mouth corner, right mouth corner")
    return pts


def align_face(image: np.ndarray, landmarks, crop_size: int | str = "auto", scale: float = SCALE) -> AlignedFace | None:
    """The aligned square crop of the face at ``landmarks``; None when no similarity fits them."""
    pts = check_landmarks(landmarks)
    auto = crop_size == "auto"
    size = auto_crop_size(pts, scale) if auto else int(crop_size)
    if size < 1:
        return None
    fit = similarity(pts, template_points(size, scale, auto=auto))
    if fit is None:
        return None
    matrix, inliers = fit
    return AlignedFace(crop=warp_affine(image, matrix, size), matrix=matrix, inliers=inliers, size=size)
