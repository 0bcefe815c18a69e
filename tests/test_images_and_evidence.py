"""Images as media, the modality rule, and ensembles that weigh evidence (no model weights needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensics_core.detector import DEFAULT_SCORE_BANDS, DetectorCard, ScoreBands
from forensics_core.ensemble import combine, run_ensemble
from forensics_core.evidence import weigh
from forensics_core.media import probe
from forensics_core.modalities import abstention, missing_modalities
from forensics_core.results import DetectionResult
from forensics_core.testing import FakeDetector, registered


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """The astronaut portrait as png, jpg and webp (real images written by Pillow)."""
    root = tmp_path_factory.mktemp("photos")
    image = Image.open(Path(__file__).parent / "data" / "gend_g1" / "input.png").convert("RGB")
    out = {}
    for ext in ("png", "jpg", "webp"):
        out[ext] = root / f"astronaut.{ext}"
        image.save(out[ext])
    return out


@pytest.mark.parametrize("ext", ["png", "jpg", "webp"])
def test_images_are_media_with_the_image_modality(photos, ext):
    info = probe(photos[ext])
    assert info.still_image and info.has_video and not info.has_audio
    assert info.modalities == {"image"} and info.to_dict()["modalities"] == ["image"]
    assert (info.width, info.height, info.frame_count) == (512, 512, 1)


def test_videos_keep_their_modalities(good_clip):
    assert probe(good_clip).modalities == {"video", "audio"}


@pytest.mark.parametrize("needs, has, missing", [
    (["video", "audio"], {"video", "audio"}, []),
    (["video", "audio"], {"video"}, ["audio"]),
    (["video", "audio"], {"image"}, ["video", "audio"]),
    (["video", "image"], {"image"}, []),
    (["video", "image"], {"video", "audio"}, []),
    (["video", "image"], {"audio"}, ["video", "image"]),
    (["image"], {"video"}, ["image"]),
    (["audio"], {"video", "audio"}, []),
])
def test_missing_modalities_rule(needs, has, missing):
    assert missing_modalities(needs, has) == missing


def test_abstention_codes_and_sentences():
    assert abstention(["video", "audio"], {"image"})[0] == "still_image"
    assert "no motion and no sound" in abstention(["video", "audio"], {"image"})[1]
    assert abstention(["video", "audio"], {"video"}) == ("no_audio_track", "no audio track")
    assert abstention(["video"], {"audio"}) == ("no_video_stream", "no video stream")
    assert abstention(["video", "image"], {"image"}) is None


def test_lipfd_abstains_on_a_photo_without_loading(photos):
    """The host decides from the card: LipFD is never run (nor loaded) for a still image."""
    from forensics_core import get_detector

    lipfd = get_detector("LIPFD-V1")
    with registered(FakeDetector):
        fake = FakeDetector().load()
        report = next(run_ensemble([lipfd, fake], [photos["jpg"]]))
    lip, vis = report.results
    assert not lipfd.loaded
    assert lip.status == "abstained" and lip.abstain_code == "still_image" and lip.score is None
    assert vis.status == "abstained" and vis.abstain_code == "still_image"  # FAKE-VISUAL takes video only
    assert report.combined.status == "abstained" and report.combined.evidence is None
    assert report.combined.summary == "no detector could judge this file"
    assert len(report.combined.reasons) == 2 and all("did not vote" in r for r in report.combined.reasons)
    assert report.media["modalities"] == ["image"]


def _row(detector_id: str, score: float | None = None, *, status: str = "ok", windows=()) -> DetectionResult:
    common = {"detector_id": detector_id, "detector_version": "1", "media_path": "/x.mp4"}
    if status == "abstained":
        return DetectionResult.abstained("no face found", code="no_face", **common)
    if status == "error":
        from forensics_core.errors import MediaProcessingError

        return DetectionResult.failed(MediaProcessingError("decode_failed", "broken"), **common)
    return DetectionResult.scored(score=score, window_scores=[w["score"] for w in windows] or [score],
                                  windows=list(windows), processing_time=0.0, **common)


def _card(detector_id: str, low: float, high: float, looks_for: str) -> DetectorCard:
    return DetectorCard(id=detector_id, name=detector_id, version="1", summary="", modalities=["video"],
                        score_bands=ScoreBands(low=low, high=high), looks_for=looks_for)


CARDS = {"LIP": _card("LIP", 0.3, 0.7, "lip-sync manipulation"), "FACE": _card("FACE", 0.2, 0.6, "a forged face")}


@pytest.mark.parametrize("scores, level", [
    ({"LIP": 0.9, "FACE": 0.1}, "substantial"),  # one detector sees its kind of manipulation: not cancelled by the other
    ({"LIP": 0.5, "FACE": 0.1}, "uncertain"),
    ({"LIP": 0.2, "FACE": 0.1}, "little"),
    ({"LIP": 0.2, "FACE": 0.6}, "substantial"),  # FACE's own high band starts at 0.6
    ({"LIP": 0.7, "FACE": None}, "substantial"),
    ({"LIP": None, "FACE": 0.19}, "little"),
])
def test_evidence_levels(scores, level):
    rows = [_row(k, v) if v is not None else _row(k, status="abstained") for k, v in scores.items()]
    got, votes = weigh(rows, CARDS)
    assert got == level
    assert [v.detector_id for v in votes] == list(scores)
    for vote, (k, v) in zip(votes, scores.items()):
        if v is None:
            assert vote.band is None and vote.status == "abstained" and "did not vote" in vote.reason and "no_face" in vote.reason
        else:
            assert vote.score == v and f"{k} scored {v:.2f}" in vote.reason and CARDS[k].looks_for in vote.reason


def test_combined_keeps_the_mean_and_adds_evidence_with_reasons():
    rows = [_row("LIP", 0.9), _row("FACE", 0.1), _row("BROKEN", status="error")]
    verdict = combine(rows, "mean", cards=CARDS)
    assert verdict.score == pytest.approx(0.5) and verdict.prediction == "FAKE" and verdict.detectors_used == ["LIP", "FACE"]
    assert verdict.evidence == "substantial" and verdict.summary == "substantial evidence of manipulation"
    assert verdict.reasons[0].startswith("LIP scored 0.90, at or above 0.70: substantial evidence of lip-sync manipulation")
    assert verdict.reasons[1].startswith("FACE scored 0.10, below 0.20: little evidence of a forged face")
    assert "BROKEN failed [decode_failed]" in verdict.reasons[2] and "did not vote" in verdict.reasons[2]
    assert [v.band for v in verdict.votes] == ["high", "low", None]
    assert combine(rows, "max", cards=CARDS).score == pytest.approx(0.9)


def test_cards_without_bands_use_the_default_and_windows_are_located():
    windows = [{"index": i, "start_frame": 25 * i, "end_frame": 25 * i, "start_time": float(i), "end_time": i + 0.04,
                "score": s, "prediction": "FAKE" if s >= 0.5 else "REAL"} for i, s in enumerate([0.2, 0.95, 0.4])]
    row = _row("X", float(np.mean([0.2, 0.95, 0.4])), windows=windows)
    level, (vote,) = weigh([row])
    assert (vote.low, vote.high) == (DEFAULT_SCORE_BANDS.low, DEFAULT_SCORE_BANDS.high)
    assert level == "uncertain" and "highest window scored 0.95 at 1.00-1.04 s" in vote.reason


def test_score_bands_validate():
    assert ScoreBands(low=0.3, high=0.7).band(0.7) == "high" and ScoreBands(low=0.3, high=0.7).band(0.29) == "low"
    with pytest.raises(ValueError):
        ScoreBands(low=0.8, high=0.2)


def test_both_built_in_cards_give_bands_and_what_they_look_for():
    from forensics_core.manifest import builtin_manifest

    for card in builtin_manifest().detectors:
        assert card.score_bands is not None and card.looks_for


def test_scan_discovers_images_only_for_detectors_that_take_them(tmp_path, photos, good_clip):
    import shutil

    from forensics_core.batch.scan import discover

    folder = tmp_path / "inbox"
    folder.mkdir()
    shutil.copy(photos["png"], folder / "a.png")
    shutil.copy(photos["webp"], folder / "b.WEBP")
    shutil.copy(good_clip, folder / "c.mp4")
    assert [p.name for p in discover([folder])] == ["c.mp4"]
    assert [p.name for p in discover([folder], include_images=True)] == ["a.png", "b.WEBP", "c.mp4"]


def test_scan_with_an_image_detector_picks_up_photos(tmp_path, photos, monkeypatch):
    """A scan's models decide: GEND-CLIP-L14 takes images, so a folder's photos are scanned (card only, no weights)."""
    import forensics_core.batch.scan as scan_mod

    seen = {}

    def fake_discover(inputs, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop after discovery")

    monkeypatch.setattr(scan_mod, "discover", fake_discover)
    for models, expected in ((["LIPFD-V1"], False), (["LIPFD-V1", "GEND-CLIP-L14"], True)):
        with pytest.raises(RuntimeError, match="stop after discovery"):
            scan_mod.scan([tmp_path], models, tmp_path / "out.jsonl")
        assert seen["include_images"] is expected


def test_model_all_expands_to_every_installed_detector():
    from forensics_core.cli.analyze import expand_all

    with registered(FakeDetector):
        ids = expand_all(("all", "LIPFD-V1"))
    assert ids[:1] == ["FAKE-VISUAL"] and "GEND-CLIP-L14" in ids and ids.count("LIPFD-V1") == 1
    assert expand_all(("GEND",)) == ["GEND"]
