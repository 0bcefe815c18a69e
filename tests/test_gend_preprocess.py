"""GenD preprocessing against the authors' reference vector g1 (no model): every stage exact."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from forensics_core.errors import InvalidOptionsError
from forensics_plugins.gend.align import align_face, auto_crop_size, template_points, warp_affine
from forensics_plugins.gend.frames import read_image
from forensics_plugins.gend.options import GenDOptions
from forensics_plugins.gend.preprocess import model_input, resize_224
from forensics_plugins.gend.sampling import max_spread_order
from gend_fixtures import G1

VARIANTS = {"auto": (None, "aligned.png", "aligned_224.png"), 256: ("variant_target_size_256", "aligned_256.png", "aligned_256_224.png")}


def _png(name: str) -> np.ndarray:
    return np.asarray(Image.open(G1 / name).convert("RGB"))


def _part(expected: dict, key: str | None) -> dict:
    return expected if key is None else expected[key]


@pytest.fixture(scope="module")
def g1_image(g1_expected) -> np.ndarray:
    image = read_image(G1 / "input.png")
    assert hashlib.sha256(image.tobytes()).hexdigest() == g1_expected["source"]["input_sha256_rgb_pixels"]
    return image


def test_landmarks_file_matches_expected(g1_expected, g1_landmarks):
    assert g1_landmarks == g1_expected["landmarks_xy"]
    order = json.loads((G1 / "landmarks.json").read_text())["order"]
    assert order == ["left_eye_centre", "right_eye_centre", "nose_tip", "left_mouth_corner", "right_mouth_corner"]


def test_auto_crop_size_is_upstream_rule(g1_landmarks, g1_expected):
    assert auto_crop_size(np.array(g1_landmarks)) == g1_expected["alignment"]["output_size_wh"][0] == 165


@pytest.mark.parametrize("crop_size", list(VARIANTS))
def test_template_points_bit_exact(crop_size, g1_expected):
    part = _part(g1_expected, VARIANTS[crop_size][0])["alignment"]
    size = part["output_size_wh"][0]
    dst = template_points(size, 1.3, auto=crop_size == "auto")
    assert dst.dtype == np.float32
    assert np.array_equal(dst, np.array(part["dst_points_float32"], dtype=np.float32))


@pytest.mark.parametrize("crop_size", list(VARIANTS))
def test_alignment_equals_reference(crop_size, g1_image, g1_landmarks, g1_expected):
    key, aligned_png, _ = VARIANTS[crop_size]
    part = _part(g1_expected, key)
    aligned = align_face(g1_image, g1_landmarks, crop_size)
    assert aligned.inliers == part["alignment"]["lmeds_inlier_mask"]
    np.testing.assert_allclose(aligned.matrix, np.array(part["alignment"]["M"]), rtol=0, atol=1e-9)
    ref = _png(aligned_png)
    assert aligned.crop.shape == ref.shape
    assert np.array_equal(aligned.crop, ref), f"{np.count_nonzero(aligned.crop != ref)} values differ"
    assert hashlib.sha256(aligned.crop.tobytes()).hexdigest() == part["aligned_png"]["sha256_rgb_pixels"]


def test_warp_is_opencv4_fixed_point_on_the_reference_matrix(g1_image, g1_expected):
    """With upstream's own M the warp alone reproduces upstream's crop (OpenCV 5's warp does not)."""
    m = np.array(g1_expected["alignment"]["M"])
    assert np.array_equal(warp_affine(g1_image, m, 165), _png("aligned.png"))
    grey = warp_affine(np.ascontiguousarray(g1_image[:, :, 1]), m, 165)
    assert grey.shape == (165, 165) and np.array_equal(grey, _png("aligned.png")[:, :, 1])


def _opencv4_bilinear(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """OpenCV 4's warpAffine INTER_LINEAR arithmetic, written out independently (imgwarp.cpp):
    positions rounded to 1/32 pixel in fixed point, integer weights (32 - fx)(32 - fy) * 32 ... summing
    to 2**15, rounded half up; outside neighbours are the border value 0."""
    m = np.asarray(matrix, dtype=np.float64)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    xs = np.arange(size, dtype=np.float64)
    X = (np.rint((inv[0, 1] * xs + inv[0, 2]) * 1024).astype(np.int64)[:, None] + 16
         + np.rint(inv[0, 0] * xs * 1024).astype(np.int64)[None, :]) >> 5
    Y = (np.rint((inv[1, 1] * xs + inv[1, 2]) * 1024).astype(np.int64)[:, None] + 16
         + np.rint(inv[1, 0] * xs * 1024).astype(np.int64)[None, :]) >> 5
    sx, sy, fx, fy = X >> 5, Y >> 5, X & 31, Y & 31
    src = image.astype(np.int64).reshape(image.shape[0], image.shape[1], -1)
    h, w = src.shape[:2]
    acc = 0
    for dy, dx, wgt in ((0, 0, (32 - fx) * (32 - fy)), (0, 1, fx * (32 - fy)), (1, 0, (32 - fx) * fy), (1, 1, fx * fy)):
        px, py = sx + dx, sy + dy
        inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        acc = acc + np.where(inside[..., None], src[np.clip(py, 0, h - 1), np.clip(px, 0, w - 1)], 0) * (32 * wgt)[..., None]
    out = np.clip((acc + (1 << 14)) >> 15, 0, 255).astype(np.uint8)
    return out.reshape(size, size, *image.shape[2:])


@pytest.mark.parametrize("matrix, size", [
    ([[0.989184, 0.047068, -145.0504], [-0.047068, 0.989184, -10.5510]], 165),
    ([[1.3, 0.2, -300.0], [-0.2, 1.3, -100.0]], 400),  # partly outside: black border
    ([[0.31, -0.05, 12.25], [0.05, 0.31, 3.5]], 97),  # shrinking
    ([[2.7, 0.9, -700.3], [-0.9, 2.7, 150.8]], 256),  # enlarging and rotated
    ([[1.0, 0.0, 5000.0], [0.0, 1.0, 0.0]], 32),  # entirely outside
])
def test_warp_is_opencv4_arithmetic(g1_image, matrix, size):
    m = np.array(matrix)
    assert np.array_equal(warp_affine(g1_image, m, size), _opencv4_bilinear(g1_image, m, size))
    grey = np.ascontiguousarray(g1_image[:, :, 0])
    assert np.array_equal(warp_affine(grey, m, size), _opencv4_bilinear(grey, m, size))


def test_warp_border_is_black(g1_image):
    shift = np.array([[1.0, 0.0, -500.0], [0.0, 1.0, 0.0]])  # maps the image mostly out of the crop
    out = warp_affine(g1_image, shift, 64)
    assert out[:, 13:].max() == 0 and out[:, :12].max() > 0


@pytest.mark.parametrize("crop_size", list(VARIANTS))
def test_clip_input_equals_reference(crop_size, g1_image, g1_landmarks, g1_expected):
    key, _, small_png = VARIANTS[crop_size]
    part = _part(g1_expected, key)
    crop = align_face(g1_image, g1_landmarks, crop_size).crop
    assert np.array_equal(resize_224(crop), _png(small_png))
    x = model_input(crop)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert hashlib.sha256(x.astype("<f4").tobytes()).hexdigest() == part["input_tensor"]["sha256_float32_le"]
    np.testing.assert_allclose(x.mean(axis=(1, 2)), part["input_tensor"]["mean_per_channel"], atol=1e-6)


def test_lmeds_drops_an_outlier_nose_where_least_squares_would_not(g1_image):
    """Four points exactly on a similarity of the template, the nose 6 px off: LMEDS keeps the four."""
    size = 200
    dst = template_points(size, auto=False).astype(np.float64)
    angle, scale, shift = np.deg2rad(8.0), 0.9, np.array([150.0, 60.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = dst @ rot.T + shift  # crop -> source
    points[2] += (6.0, 4.0)
    aligned = align_face(g1_image, points, size)
    assert aligned.inliers == [1, 1, 0, 1, 1]
    mapped = points @ aligned.matrix[:, :2].T + aligned.matrix[:, 2]
    keep = [0, 1, 3, 4]
    assert np.abs(mapped[keep] - dst[keep]).max() < 1e-3  # the four inliers land on the template
    design = np.concatenate([np.stack([points[:, 0], -points[:, 1], np.ones(5), np.zeros(5)], 1),
                             np.stack([points[:, 1], points[:, 0], np.zeros(5), np.ones(5)], 1)])
    a, b, tx, ty = np.linalg.lstsq(design, np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)[0]
    assert abs(tx - aligned.matrix[0, 2]) > 0.1  # all-point least squares would move the crop


def test_degenerate_landmarks_give_no_alignment(g1_image):
    assert align_face(g1_image, [[10.0, 10.0]] * 5, 256) is None
    with pytest.raises(InvalidOptionsError):
        align_face(g1_image, [[1.0, 2.0]] * 4)


def _brute_force_order(n: int, start: int) -> list[int]:
    """The rule as written: next = farthest from everything taken, lowest index on ties."""
    taken, dist = [start], {i: abs(i - start) for i in range(n) if i != start}
    while dist:
        best = max(dist, key=lambda i: (dist[i], -i))
        taken.append(best)
        del dist[best]
        for i in dist:
            dist[i] = min(dist[i], abs(i - best))
    return taken


def test_max_spread_order_matches_upstream_rule():
    assert list(max_spread_order(375))[:8] == [187, 0, 374, 93, 280, 140, 327, 46]
    for n in [*range(1, 70), 150, 301]:
        assert list(max_spread_order(n)) == _brute_force_order(n, n // 2)
    assert list(max_spread_order(10, 0)) == _brute_force_order(10, 0)
    assert list(max_spread_order(0)) == []


def test_max_spread_order_is_lazy_for_long_videos():
    order = max_spread_order(4 * 3600 * 30)
    assert [next(order) for _ in range(3)] == [216000, 0, 431999]


def test_options_validate_landmarks_and_sizes():
    assert GenDOptions(landmarks={"7": [[1, 2]] * 5}).landmarks == {7: [(1.0, 2.0)] * 5}
    assert GenDOptions().crop_size == "auto" and GenDOptions(crop_size=256).crop_size == 256
    assert GenDOptions(num_frames=16).max_frames_tried == 64
    for bad in ({"landmarks": [[1, 2]] * 4}, {"landmarks": [[1, float("nan")]] * 5}, {"crop_size": "big"},
                {"crop_size": 8}, {"landmarks": {"-1": [[1, 2]] * 5}}, {"num_frames": 8, "frames_tried": 4}):
        with pytest.raises(ValueError):
            GenDOptions(**bad)


def test_manifest_options_schema_is_the_options_model():
    from forensics_core.manifest import builtin_manifest

    assert builtin_manifest().card("GEND-CLIP-L14").options_schema == GenDOptions.model_json_schema()


def test_image_decoding_turns_exif_orientation_upright(tmp_path):
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :10] = 255  # a white band on the left
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    im.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    upright = read_image(tmp_path / "rotated.jpg")
    assert upright.shape == (40, 20, 3)
    assert upright[:10].mean() > 200 and upright[-10:].mean() < 50  # the band is now on top
    Image.fromarray(pixels).convert("LA").save(tmp_path / "grey_alpha.png")
    assert read_image(tmp_path / "grey_alpha.png").shape == (20, 40, 3)
