"""The host: registry, options, results, errors, ensembles and the CLI, with real files and real detectors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

import forensics_core
from forensics_core import DetectionResult, InvalidOptionsError, MediaProcessingError, UnknownDetectorError
from forensics_core.ensemble import combine, run_ensemble
from forensics_core.errors import MEDIA_ERROR_CODES
from forensics_core.plugins import get_host
from forensics_core.registry import DuplicateDetectorError
from forensics_core.results import result_json_schema
from forensics_core.testing import AudioFakeDetector, FakeDetector, registered


def run_cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "forensics_core", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def fakes():
    with registered(FakeDetector, AudioFakeDetector):
        yield


def test_builtin_lipfd_comes_from_its_entry_point():
    plugins = {p["name"]: p for p in forensics_core.get_plugins()}
    assert plugins["lipfd"]["status"] == "ok" and plugins["lipfd"]["detectors"] == ["LIPFD-V1"]
    card = {m["id"]: m for m in forensics_core.list_models()}["LIPFD-V1"]
    assert card["modalities"] == ["video", "audio"] and card["plugin"] == "lipfd"
    assert "window_len" in card["options_schema"]["properties"]


def test_manifest_options_schema_matches_the_options_model():
    from forensics_core.manifest import builtin_manifest
    from forensics_plugins.lipfd.options import LipFDOptions

    assert builtin_manifest().card("LIPFD-V1").options_schema == LipFDOptions.model_json_schema()


def test_lookup_is_case_insensitive_with_aliases(fakes):
    assert type(forensics_core.get_detector("lipfd-v1")).__name__ == "LipFDDetector"
    assert type(forensics_core.get_detector("Lips-Are-Lying")).__name__ == "LipFDDetector"
    assert isinstance(forensics_core.get_detector("fake"), FakeDetector)


def test_unknown_id_lists_known_ids(fakes):
    with pytest.raises(UnknownDetectorError) as info:
        forensics_core.load_model("NOPE")
    assert "LIPFD-V1" in str(info.value) and "FAKE-VISUAL" in str(info.value)
    assert isinstance(info.value, KeyError)


def test_duplicate_id_names_both_plugins(fakes):
    import types

    plugin = types.SimpleNamespace(register_detectors=forensics_core.hookimpl(lambda register: register(FakeDetector)))
    status = get_host().register_plugin(plugin, name="dup-plugin")
    try:
        assert status.status == "failed"
        assert "dup-plugin" in status.error and "forensics-testing" in status.error
        assert isinstance(forensics_core.get_detector("FAKE-VISUAL"), FakeDetector)  # the first one still works
    finally:
        get_host().unregister_plugin("dup-plugin")
    with pytest.raises(DuplicateDetectorError):
        get_host().registry.register(FakeDetector, plugin="again")


def test_mistyped_option_names_the_valid_ones(fakes, good_clip):
    det = forensics_core.load_model("FAKE-VISUAL")
    with pytest.raises(InvalidOptionsError) as info:
        det.analyze(good_clip, frame=3)
    assert "frames" in info.value.hint and "threshold" in info.value.hint
    lipfd = forensics_core.get_detector("LIPFD-V1")
    with pytest.raises(InvalidOptionsError, match="window_len"):
        lipfd.parse_options(window_len="five")


def test_constructor_does_no_work_and_load_is_idempotent(fakes, good_clip):
    det = forensics_core.get_detector("FAKE-VISUAL")
    assert not det.loaded and det.describe()["loaded"] is False
    with pytest.raises(forensics_core.DetectorNotLoadedError):
        det.analyze(good_clip)
    assert det.load() is det.load()
    result = det.analyze(good_clip)
    assert result.status == "ok" and result["prediction"] in {"REAL", "FAKE"}
    assert result["metrics"]["window_scores"] == result.metrics.window_scores


def test_results_validate_against_the_printed_schema(fakes, good_clip):
    schema = json.loads(run_cli("schema").stdout)
    assert schema == json.loads(json.dumps(result_json_schema()))
    ok = forensics_core.load_model("FAKE-VISUAL").analyze(good_clip).to_dict()
    jsonschema.validate(ok, schema)
    err = DetectionResult.failed(MediaProcessingError("empty_file", "x: empty", path="x"), detector_id="A", detector_version="1", media_path="x")
    jsonschema.validate(err.to_dict(), schema)
    assert err.score is None and err.prediction is None


def test_no_placeholder_scores():
    with pytest.raises(ValueError):
        DetectionResult(status="abstained", abstain_reason="no audio track", score=0.5, detector_id="A",
                        detector_version="1", media_path="x", processing_time=0)
    with pytest.raises(ValueError):
        DetectionResult(status="ok", detector_id="A", detector_version="1", media_path="x", processing_time=0)


def test_decoder_exceptions_become_decode_failed(fakes, media_corpus, tmp_path):
    class Crashing(FakeDetector):
        def _analyze(self, path, options):
            import cv2

            cv2.imdecode(b"", 0)  # raises cv2.error

    det = Crashing().load()
    with pytest.raises(MediaProcessingError) as info:
        det.analyze(media_corpus["good"])
    assert info.value.code == "decode_failed" and info.value.__cause__ is not None


def test_ensemble_abstains_on_missing_modality_and_combines_ok_rows(fakes, media_corpus, good_clip):
    visual, audio = forensics_core.load_model("FAKE-VISUAL"), forensics_core.load_model("FAKE-AUDIO")
    paths = [media_corpus["video_only"], good_clip, media_corpus["empty"]]
    reports = list(run_ensemble([visual, audio], paths))
    assert len(reports) == 3
    silent, normal, empty = reports
    assert [r.status for r in silent.results] == ["ok", "abstained"]
    assert silent.results[1].abstain_reason == "no audio track" and silent.results[1].score is None
    assert silent.combined.score == pytest.approx(silent.results[0].score) and silent.combined.detectors_used == ["FAKE-VISUAL"]
    assert [r.status for r in normal.results] == ["ok", "ok"]
    assert normal.combined.score == pytest.approx((normal.results[0].score + normal.results[1].score) / 2)
    assert combine(normal.results, "max").score == max(r.score for r in normal.results)
    weighted = combine(normal.results, "weighted", {"FAKE-VISUAL": 3.0, "FAKE-AUDIO": 1.0})
    assert weighted.score == pytest.approx((3 * normal.results[0].score + normal.results[1].score) / 4)
    assert [r.status for r in empty.results] == ["error", "error"] and empty.results[0].error.code == "empty_file"
    assert empty.combined.status == "abstained" and empty.combined.score is None


@pytest.mark.slow
def test_ensemble_with_lipfd(fakes, lipfd, media_corpus, good_clip):
    reports = list(run_ensemble([forensics_core.load_model("FAKE-VISUAL"), lipfd], [media_corpus["video_only"], good_clip],
                                options={"LIPFD-V1": {"framing": "full"}}))  # a drawn face: the whole-frame path
    silent, normal = reports
    assert silent.results[1].status == "abstained" and silent.results[1].abstain_reason == "no audio track"
    assert silent.combined.detectors_used == ["FAKE-VISUAL"]
    assert [r.status for r in normal.results] == ["ok", "ok"]
    assert normal.combined.score == pytest.approx(sum(r.score for r in normal.results) / 2)


@pytest.mark.slow
def test_lipfd_on_silent_video_says_no_audio_track(lipfd, media_corpus):
    """One outcome everywhere (issue 14, item 12): a detector that cannot hear abstains with the code."""
    result = lipfd.analyze(media_corpus["video_only"])
    assert result.status == "abstained" and result.abstain_code == "no_audio_track"
    assert result.abstain_reason == "no audio track" and result.score is None


def test_listing_never_imports_heavy_modules():
    code = ("import sys; from forensics_core.cli import main\n"
            "try:\n    main(['models', '--json'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'cv2', 'librosa', 'open_clip', 'moviepy', 'numpy') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "LIPFD-V1" in out.stdout


def test_cli_models_json_lists_lipfd():
    out = run_cli("models", "--json")
    assert out.returncode == 0
    card = {m["id"]: m for m in json.loads(out.stdout)}["LIPFD-V1"]
    assert card["requirements"] and card["options_schema"]["properties"]["profile"]["default"] == "reference"


@pytest.fixture(scope="module")
def testing_site(tmp_path_factory) -> str:
    """A real installed distribution whose entry point registers the testing detectors."""
    from plugin_packages import install_plugin

    return install_plugin(tmp_path_factory.mktemp("site"), "forensics-testing-detectors", "testing_detectors_plugin",
                          "from forensics_core import hookimpl\n"
                          "from forensics_core.testing import FakeDetector, AudioFakeDetector\n"
                          "@hookimpl\ndef register_detectors(register):\n    register(FakeDetector)\n    register(AudioFakeDetector)\n")


@pytest.mark.parametrize("case,code", [("missing", 3), ("directory", 3), ("empty", 3), ("text_as_mp4", 3)])
def test_cli_exit_codes_for_bad_media(media_corpus, case, code, testing_site):
    out = run_cli("analyze", str(media_corpus[case]), "--model", "FAKE-VISUAL", "--json", env={"PYTHONPATH": testing_site})
    assert out.returncode == code, out.stderr
    row = json.loads(out.stdout)
    assert row["status"] == "error" and row["error"]["code"] in MEDIA_ERROR_CODES and row["error"]["hint"]


def test_cli_exit_codes(tmp_path, media_corpus, testing_site):
    env = {"PYTHONPATH": testing_site, "FORENSICS_HOME": str(tmp_path / "home")}
    assert run_cli("analyze", str(media_corpus["good"]), "--model", "FAKE-VISUAL", env=env).returncode == 0
    assert run_cli("analyze", str(media_corpus["good"]), "--model", "NOPE", env=env).returncode == 4
    bad_opt = run_cli("analyze", str(media_corpus["good"]), "--model", "FAKE-VISUAL", "--option", "nope=1", env=env)
    assert bad_opt.returncode == 2 and "valid options are" in bad_opt.stderr
    assert run_cli("analyze", env=env).returncode == 2
    no_weights = run_cli("analyze", str(media_corpus["good"]), "--model", "LIPFD-V1", env=env)
    assert no_weights.returncode == 4 and "forensics pull LIPFD-V1" in no_weights.stderr
    # a batch: one bad file never stops the others, one row per file
    batch = run_cli("analyze", str(media_corpus["good"]), str(media_corpus["empty"]), str(media_corpus["video_only"]),
                    "--model", "FAKE-VISUAL", "--json", env=env)
    rows = [json.loads(line) for line in batch.stdout.splitlines()]
    assert [r["status"] for r in rows] == ["ok", "error", "ok"] and batch.returncode == 3



def test_cli_json_logs_on_stderr_result_in_output_file(tmp_path, media_corpus, testing_site):
    out_file = tmp_path / "out" / "result.json"
    out_file.parent.mkdir()
    run = run_cli("--log-format", "json", "--log-level", "info", "analyze", str(media_corpus["good"]),
                  "--model", "FAKE-VISUAL", "--json", "--output", str(out_file), env={"PYTHONPATH": testing_site})
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert json.loads(out_file.read_text())["status"] == "ok"
    assert os.listdir(out_file.parent) == ["result.json"]  # written atomically, no temp file left
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    analyzed = [entry for entry in lines if entry.get("event") == "analyzed"]
    assert analyzed and analyzed[0]["detector_id"] == "FAKE-VISUAL" and analyzed[0]["media_path"] == str(media_corpus["good"])
