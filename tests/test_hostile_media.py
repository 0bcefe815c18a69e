"""Hostile and odd media through LIPFD-V1 (issue #5): never a crash, never a lost result.

* every case of the media corpus through the loaded detector gives an ``ok`` result or a
  ``MediaProcessingError`` with its documented code (:data:`LIPFD_OUTCOMES`, mirrored in
  docs/errors.md), and nothing is written next to the inputs, into the temporary
  directory or into the working directory;
* the whole corpus as one ``forensics analyze`` batch: one JSON row per input, in order,
  exit code 3, no traceback, nothing left behind;
* resource caps (``FORENSICS_MAX_*``, ``FORENSICS_DECODE_TIMEOUT_S``) give their codes;
* one loaded detector used from several threads equals serial runs; two processes on the
  same file at once do not interfere;
* subprocesses get argument lists: hostile names inject nothing, and no module under
  src/ uses a shell.

The model runs with ``n_extract=1`` (one window, frames 0-4: the same window whatever
``n_extract`` is, so every run here can be compared with every other) to keep each file to
a few seconds on a CPU; the media handling is the same. That the *last* window of every
valid file decodes too (frame F-2: the end of each stream) is checked on the
preprocessing alone, without the model, with ``n_extract=3``.

The corpus is synthetic (a drawn face no face detector finds), so LIPFD-V1 runs here with
``framing=full``: the whole-frame path, whose decoding these cases test. With the default
``auto`` it would abstain (``no_face``) on every file; faces have their own tests
(test_faces.py, test_lipfd_faces.py).
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from media_corpus import CASES

from forensics_core import DetectionResult, MediaProcessingError
from forensics_core.cli import exit_code_for
from forensics_core.errors import EXIT_MEDIA, MEDIA_ERROR_CODES

ROOT = Path(__file__).resolve().parents[1]
N = 1  # windows per model run
N_PREP = 3  # windows per preprocessing-only run
OK = "ok"
LIMIT_VARS = ("FORENSICS_MAX_FILE_MB", "FORENSICS_MAX_DURATION_S", "FORENSICS_MAX_PIXELS", "FORENSICS_DECODE_TIMEOUT_S")
NAME_CASES = ("unicode_name", "shell_meta_name", "pwned_name", "dash_name", "protocol_name", "newline_name", "non_utf8_name")
NO_AUDIO, NO_VIDEO = "abstained: no_audio_track", "abstained: no_video_stream"

#: What LIPFD-V1 gives for each corpus case: "ok", "abstained: <abstain_code>" (the file lacks
#: what the detector needs: the same outcome in the API, analyze and scan) or the
#: MediaProcessingError code. docs/errors.md has the same table (tests/test_docs_errors.py compares them).
LIPFD_OUTCOMES: dict[str, str] = {
    "missing": "file_not_found",
    "directory": "not_a_file",
    "fifo": "not_a_file",
    "empty": "empty_file",
    "text_as_mp4": "unsupported_format",
    "random_bytes": "unsupported_format",
    "subtitles_only": "unsupported_format",
    "truncated_mp4": "decode_failed",
    "truncated_webm": "decode_failed",
    "good": OK,
    "moov_at_end": OK,
    "video_only": NO_AUDIO,
    "audio_only_wav": NO_VIDEO,
    "audio_only_m4a": NO_VIDEO,
    "audio_only_mp4": NO_VIDEO,
    "audio_with_cover_art": NO_VIDEO,  # cover art is not video
    "still_png": "abstained: still_image",  # a single picture: no motion (even with a separate WAV)
    "still_jpg": "abstained: still_image",
    "one_frame": "too_short",
    "five_frames": "too_short",  # window_len + 1 = 6 frames needed
    "video_shorter_than_audio": "stream_mismatch",
    "audio_shorter_than_video": "stream_mismatch",
    "vp9_opus_webm": OK,
    "mjpeg_pcm_avi": OK,
    "h264_mkv": OK,  # OpenCV estimates 52 frames from the duration; 50 packets are counted
    "h264_mov": OK,
    "yuv420p10le": OK,
    "yuv444p": OK,
    "rotated_90": OK,
    "vfr": OK,
    "audio_8k_mono": OK,
    "audio_48k_stereo": OK,
    "audio_5_1": OK,
    "odd_size_17x9": OK,
    "large_4000x3000": "too_short",  # two frames
    "raw_h264": NO_AUDIO,  # an elementary stream has no audio
    "streamed_mkv": OK,  # no duration and no frame count in the header: packets counted
    "one_chapter": OK,
    "unicode_name": OK,
    "shell_meta_name": OK,
    "pwned_name": OK,
    "dash_name": OK,
    "protocol_name": OK,
    "newline_name": OK,
    "non_utf8_name": OK,  # issue 14: OpenCV segfaulted on the name; decoders now get /proc/self/fd/N
    "symlink_loop": "file_not_found",
    "dangling_symlink": "file_not_found",
    "device_link": "not_a_file",  # /dev/zero behind a link: never opened
}


def abstain_code(expected: str) -> str | None:
    return expected.split(": ", 1)[1] if expected.startswith("abstained: ") else None


def test_outcome_table_covers_every_corpus_case():
    from forensics_core.detector import ABSTAIN_CODES

    assert set(LIPFD_OUTCOMES) == set(CASES)
    assert set(LIPFD_OUTCOMES.values()) <= {OK, *MEDIA_ERROR_CODES, *(f"abstained: {c}" for c in ABSTAIN_CODES)}
    for case, spec in CASES.items():  # where the probe already fails, LipFD reports the same code
        if spec.error is not None:
            assert LIPFD_OUTCOMES[case] == spec.error, case


# --------------------------------------------------------------------------- helpers


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``root`` (not following links, opening nothing): kind, size, mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns)
    return out


_OURS = re.compile(r"ffmpeg|ffreport|forensics|lipfd|\.wav$", re.IGNORECASE)


def our_temp_entries() -> set[str]:
    """Entries of the system temp directory that this project could have left there."""
    try:
        return {n for n in os.listdir(tempfile.gettempdir()) if _OURS.search(n)}
    except OSError:
        return set()


#: Torch threads per model process. This module runs two model processes at once (the CLI
#: batch beside the in-process pass; the two-process test), and OpenMP threads that wait for
#: a busy core are slow: on 2 cores with the other one loaded, 2 threads took 2.5x longer
#: than 1. Results are compared between runs with the same count.
TORCH_THREADS = max(1, (os.cpu_count() or 2) // 2)


def clean_env(tmpdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LIMIT_VARS and k != "FFREPORT"}
    threads = str(TORCH_THREADS)
    return {**env, "TMPDIR": str(tmpdir), "TEMP": str(tmpdir), "TMP": str(tmpdir),
            "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, **extra}


def row_path(row: dict) -> str:
    """The exact path a row names (``media_path``, or ``media_path_bytes`` for a name that is not UTF-8)."""
    from forensics_core.media import path_from_fields

    return path_from_fields(row["media_path"], row.get("media_path_bytes"))


def window_scores(result: DetectionResult) -> np.ndarray:
    return np.asarray(result.metrics.window_scores, dtype=np.float64)


def _strip_timing(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("processing_time", "timings")}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "forensics_core", "analyze", *args]


@pytest.fixture(scope="module", autouse=True)
def torch_threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    yield
    torch.set_num_threads(before)


@dataclass
class CorpusRun:
    outcomes: dict[str, object] = field(default_factory=dict)  # case -> DetectionResult | exception
    seconds: dict[str, float] = field(default_factory=dict)
    corpus_after: dict = field(default_factory=dict)
    tmp_left: list[str] = field(default_factory=list)
    cwd_left: list[str] = field(default_factory=list)
    system_tmp_new: set[str] = field(default_factory=set)


@dataclass
class CliBatch:
    cases: list[str]
    paths: list[str]
    proc: subprocess.Popen
    stdout: Path
    stderr: Path
    tmp: Path
    cwd: Path


@pytest.fixture(scope="module")
def corpus_root(media_corpus) -> Path:
    return media_corpus["good"].parent.parent  # files/ and the builders' _work/


@pytest.fixture(scope="module")
def corpus_before(corpus_root) -> dict:
    return snapshot(corpus_root)


@pytest.fixture(scope="module")
def cli_batch(media_corpus, corpus_before, standin_checkpoint, tmp_path_factory):
    """The whole corpus (a FIFO and a directory included) as one ``forensics analyze`` run.

    Started before the in-process pass and run beside it (each on its own core);
    ``test_cli_mixed_batch_gives_one_row_per_file`` waits for it.
    """
    base = tmp_path_factory.mktemp("cli_batch")
    tmp, cwd, out = base / "tmp", base / "cwd", base / "out"
    for d in (tmp, cwd, out):
        d.mkdir()
    cases = list(media_corpus)
    paths = [str(media_corpus[c]) for c in cases]
    stdout, stderr = out / "stdout.jsonl", out / "stderr.txt"
    with open(stdout, "wb") as fo, open(stderr, "wb") as fe:
        proc = subprocess.Popen(
            cli(*paths, "--model", "LIPFD-V1", "--weights", str(standin_checkpoint), "--device", "cpu",
                "--option", f"n_extract={N}", "--option", "framing=full", "--json", "--quiet"),
            stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, cwd=cwd,
            env=clean_env(tmp, FORENSICS_HOME=str(base / "home")),
        )
    yield CliBatch(cases, paths, proc, stdout, stderr, tmp, cwd)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def corpus_run(request, lipfd, media_corpus, corpus_root, corpus_before, tmp_path_factory) -> CorpusRun:
    """Every corpus case through the loaded LIPFD-V1 once, in an empty TMPDIR and working directory."""
    if any(getattr(item, "originalname", item.name) == "test_cli_mixed_batch_gives_one_row_per_file"
           for item in request.session.items):
        request.getfixturevalue("cli_batch")  # start it first: it runs beside this pass
    run = CorpusRun()
    tmp, cwd = tmp_path_factory.mktemp("corpus_tmp"), tmp_path_factory.mktemp("corpus_cwd")
    system_tmp = our_temp_entries()
    with pytest.MonkeyPatch.context() as mp:
        for var in LIMIT_VARS:
            mp.delenv(var, raising=False)
        mp.setenv("TMPDIR", str(tmp))
        mp.setattr(tempfile, "tempdir", str(tmp))
        mp.chdir(cwd)
        for case, path in media_corpus.items():
            started = time.perf_counter()
            try:
                run.outcomes[case] = lipfd.analyze(path, n_extract=N, framing="full")
            except Exception as exc:  # noqa: BLE001 - kept, and judged by the tests below
                run.outcomes[case] = exc
            run.seconds[case] = time.perf_counter() - started
    run.corpus_after = snapshot(corpus_root)
    run.tmp_left, run.cwd_left = sorted(os.listdir(tmp)), sorted(os.listdir(cwd))
    run.system_tmp_new = our_temp_entries() - system_tmp
    return run


# --------------------------------------------------------------------------- the corpus, in process


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_corpus_case_gives_its_documented_outcome(corpus_run, media_corpus, case):
    outcome, expected = corpus_run.outcomes[case], LIPFD_OUTCOMES[case]
    if isinstance(outcome, BaseException) and not isinstance(outcome, MediaProcessingError):
        pytest.fail(f"{case}: {type(outcome).__name__} escaped (not a MediaProcessingError): {outcome!r}")
    if expected == OK:
        assert isinstance(outcome, DetectionResult), f"{case}: expected a result, got {outcome!r}"
        assert outcome.status == "ok" and 0.0 <= outcome.score <= 1.0
        assert len(outcome.windows) == N and len(outcome.metrics.window_scores) == N
        assert outcome.windows[0].start_frame == 0 and outcome.frames_analyzed == 5
        assert row_path(outcome.to_dict()) == os.path.realpath(media_corpus[case])
        DetectionResult.model_validate_json(outcome.model_dump_json())  # JSON-safe (no NaN, valid UTF-8)
    elif abstain_code(expected):
        assert isinstance(outcome, DetectionResult), f"{case}: expected {expected}, got {outcome!r}"
        assert outcome.status == "abstained" and outcome.abstain_code == abstain_code(expected), case
        assert outcome.score is None and outcome.abstain_reason
        assert row_path(outcome.to_dict()) == os.path.realpath(media_corpus[case])
    else:
        assert isinstance(outcome, MediaProcessingError), f"{case}: expected {expected}, got {outcome!r}"
        assert outcome.code == expected, f"{case}: {outcome.code} ({outcome.message})"
        assert outcome.code in MEDIA_ERROR_CODES and outcome.hint
        json.dumps(outcome.to_dict())


@pytest.mark.parametrize("case", [c for c, outcome in LIPFD_OUTCOMES.items() if outcome == OK])
def test_preprocessing_decodes_every_valid_stream_to_its_end(media_corpus, case, monkeypatch):
    """Windows spread over the whole clip (the last one ends on frame F-2), no model."""
    from forensics_plugins.lipfd.options import LipFDOptions
    from forensics_plugins.lipfd.pipeline import prepare

    for var in LIMIT_VARS:
        monkeypatch.delenv(var, raising=False)
    prepared = prepare(media_corpus[case], LipFDOptions(n_extract=N_PREP, framing="full"))
    assert len(prepared.images) == N_PREP and prepared.spans[0].start_frame == 0
    assert prepared.spans[-1].end_frame == prepared.frame_count - 2
    assert all(s.mel_end > s.mel_begin for s in prepared.spans)
    assert all(img.shape == (1000, 2500, 3) for img in prepared.images)


@pytest.mark.slow
def test_corpus_run_leaves_nothing_behind(corpus_run, corpus_before):
    assert corpus_run.corpus_after == corpus_before, "a file was written, changed or removed beside the inputs"
    assert corpus_run.tmp_left == [], "left in TMPDIR"
    assert corpus_run.cwd_left == [], "written into the working directory"
    assert corpus_run.system_tmp_new == set(), "left in the system temp directory"


@pytest.mark.slow
def test_containers_without_a_frame_count_are_counted_not_estimated(corpus_run):
    """OpenCV estimates 52 frames for these 50-frame Matroska files; the last window must use real frames."""
    for case in ("h264_mkv", "one_chapter", "streamed_mkv", "vp9_opus_webm"):
        media = corpus_run.outcomes[case].media
        assert media["frame_count"] == 50 and media["frame_count_source"] == "packets", case
    assert corpus_run.outcomes["good"].media["frame_count_source"] == "container"


@pytest.mark.slow
def test_odd_but_valid_inputs(corpus_run):
    assert corpus_run.outcomes["rotated_90"].media["rotation"] == 90
    assert corpus_run.outcomes["vfr"].media["frame_count"] == 50
    assert corpus_run.outcomes["good"].score == pytest.approx(corpus_run.outcomes["moov_at_end"].score, abs=1e-6)
    large = corpus_run.outcomes["large_4000x3000"]
    assert "2 frames" in large.message  # 12 MP is within the default pixel cap: too short, not too large


@pytest.mark.slow
def test_hostile_names_are_just_files(corpus_run, media_corpus):
    """The six name cases hold the same clip: the same scores, and nothing was executed."""
    ref = window_scores(corpus_run.outcomes["unicode_name"])
    for case in NAME_CASES:
        np.testing.assert_allclose(window_scores(corpus_run.outcomes[case]), ref, atol=1e-6, rtol=0, err_msg=case)
    files = media_corpus["good"].parent
    expected = {CASES[c].filename for c in CASES if CASES[c].build is not None}
    assert set(os.listdir(files)) == expected  # no 'pwned' beside the inputs (the cwd was checked to stay empty)
    for where in (files, ROOT, Path.cwd()):
        assert not (where / "pwned").exists() and not (where / "pwned2").exists()


@pytest.mark.slow
def test_relative_hostile_names(lipfd, corpus_run, media_corpus, tmp_path, monkeypatch):
    """``$(touch pwned).mp4`` and ``-y.mp4`` given as bare relative names, from their folder."""
    names = ["$(touch pwned).mp4", "-y.mp4"]
    work = tmp_path / "work"
    work.mkdir()
    for name in names:
        shutil.copyfile(media_corpus["unicode_name"], work / name)
    monkeypatch.chdir(work)
    for var in LIMIT_VARS:
        monkeypatch.delenv(var, raising=False)
    ref = window_scores(corpus_run.outcomes["unicode_name"])
    for name in names:
        result = lipfd.analyze(name, n_extract=N, framing="full")
        assert result.status == "ok" and Path(result.media_path) == (work / name).resolve()
        np.testing.assert_allclose(window_scores(result), ref, atol=1e-6, rtol=0, err_msg=name)
    assert sorted(os.listdir(work)) == sorted(names)


# --------------------------------------------------------------------------- the CLI batch


@pytest.mark.slow
def test_cli_mixed_batch_gives_one_row_per_file(cli_batch, corpus_run, corpus_root, corpus_before):
    """One JSON row per input, in input order, each with its documented outcome; exit code 3."""
    batch = cli_batch
    try:
        returncode = batch.proc.wait(timeout=900)
    except subprocess.TimeoutExpired:
        batch.proc.kill()
        batch.proc.wait()
        pytest.fail("forensics analyze hung on the corpus")
    stderr = batch.stderr.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = batch.stdout.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(batch.paths), stderr[-3000:]
    rows = [json.loads(line) for line in lines]
    for case, given, row in zip(batch.cases, batch.paths, rows):
        DetectionResult.model_validate(row)
        assert row_path(row) == os.path.realpath(given), case  # in input order, the exact name
        expected = LIPFD_OUTCOMES[case]
        if expected == OK:
            assert row["status"] == "ok", f"{case}: {row['error']}"
            assert len(row["windows"]) == N
            np.testing.assert_allclose(row["metrics"]["window_scores"], window_scores(corpus_run.outcomes[case]),
                                       atol=1e-6, rtol=0, err_msg=case)  # the CLI gives what the API gives
        elif abstain_code(expected):
            assert row["status"] == "abstained" and row["abstain_code"] == abstain_code(expected), case
            assert _strip_timing(row) == _strip_timing(corpus_run.outcomes[case].to_dict()), case  # as the API's
        else:
            assert row["status"] == "error" and row["score"] is None, case
            assert row["error"]["code"] == expected and row["error"]["hint"], f"{case}: {row['error']}"
            assert row["error"]["type"] == "MediaProcessingError", case
    assert returncode == exit_code_for(rows) == EXIT_MEDIA, stderr[-3000:]
    assert os.listdir(batch.tmp) == [], "left in TMPDIR"
    assert os.listdir(batch.cwd) == [], "written into the working directory (e.g. 'pwned')"
    assert snapshot(corpus_root) == corpus_before, "a file was written beside the inputs"


# --------------------------------------------------------------------------- resource caps


@pytest.mark.slow
@pytest.mark.parametrize("var,value,case,code", [
    ("FORENSICS_MAX_DURATION_S", "1", "good", "duration_exceeds_limit"),  # 4 s, from the header
    ("FORENSICS_MAX_DURATION_S", "1", "streamed_mkv", "duration_exceeds_limit"),  # no duration in the header: measured
    ("FORENSICS_MAX_PIXELS", "100000", "good", "resolution_exceeds_limit"),  # 640x480
    ("FORENSICS_MAX_FILE_MB", "0.01", "good", "file_too_large"),  # ~48 KiB
    ("FORENSICS_DECODE_TIMEOUT_S", "0.000001", "good", "decode_timeout"),  # ffmpeg is killed
])
def test_resource_caps(lipfd, media_corpus, monkeypatch, tmp_path, var, value, case, code):
    for other in LIMIT_VARS:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(var, value)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MediaProcessingError) as info:
        lipfd.analyze(media_corpus[case], n_extract=N, framing="full")
    assert info.value.code == code, info.value.message
    assert var in info.value.hint  # the hint names the variable to raise
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- concurrency


@pytest.mark.slow
def test_threads_share_one_detector_and_match_serial_runs(lipfd, corpus_run, media_corpus):
    """Decoding runs in parallel, the forward passes take turns (the detector's lock)."""
    cases = ["good", "h264_mov", "vp9_opus_webm"]
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        futures = {case: pool.submit(lipfd.analyze, media_corpus[case], n_extract=N, framing="full") for case in cases}
        results = {case: f.result(timeout=600) for case, f in futures.items()}
    for case, result in results.items():
        serial = corpus_run.outcomes[case]
        assert Path(result.media_path) == Path(serial.media_path)
        np.testing.assert_allclose(window_scores(result), window_scores(serial), atol=1e-6, rtol=0, err_msg=case)
        assert [w.start_frame for w in result.windows] == [w.start_frame for w in serial.windows]


@pytest.mark.slow
def test_two_processes_on_the_same_file(corpus_run, media_corpus, standin_checkpoint, tmp_path):
    path = media_corpus["good"]
    tmp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    tmp.mkdir()
    cwd.mkdir()
    env = clean_env(tmp, FORENSICS_HOME=str(tmp_path / "home"))
    cmd = cli(str(path), "--model", "LIPFD-V1", "--weights", str(standin_checkpoint), "--device", "cpu",
              "--option", f"n_extract={N}", "--option", "framing=full", "--json", "--quiet")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
             for _ in range(2)]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    results = []
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0 and "Traceback" not in err, err[-3000:]
        results.append(DetectionResult.model_validate_json(out))
    a, b = results
    assert a.status == b.status == "ok"
    np.testing.assert_allclose(window_scores(a), window_scores(b), atol=1e-6, rtol=0)
    np.testing.assert_allclose(window_scores(a), window_scores(corpus_run.outcomes["good"]), atol=1e-6, rtol=0)
    assert os.listdir(tmp) == [] and os.listdir(cwd) == []


# --------------------------------------------------------------------------- no shell anywhere

_SHELL_CALLS = {"os.system", "os.popen", "os.spawnlp", "os.spawnvp", "subprocess.getoutput",
                "subprocess.getstatusoutput", "asyncio.create_subprocess_shell", "pty.spawn"}
_PROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def shell_uses(source: str, filename: str = "<src>") -> list[str]:
    """Calls that would hand a command to a shell, found in the syntax tree (docstrings and
    comments that merely mention ``shell=True`` are not code)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom) and node.module in {"os", "subprocess"}:
            bad = [a.name for a in node.names if f"{node.module}.{a.name}" in _SHELL_CALLS]
            if bad:
                found.append(f"{where}: from {node.module} import {', '.join(bad)}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name in _SHELL_CALLS:
            found.append(f"{where}: {name}()")
        for kw in node.keywords:
            if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                found.append(f"{where}: {name}(shell=...)")
        if name.split(".")[-1] in _PROCESS_CALLS and name.split(".")[0] in {"subprocess", "sp"} and node.args:
            first = node.args[0]
            if isinstance(first, (ast.JoinedStr, ast.BinOp)) or (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                found.append(f"{where}: {name}() with a command string")
    return found


def test_the_scanner_finds_shell_use():
    planted = ("import os, subprocess\nfrom os import system\nos.system('ls')\nos.popen('ls')\n"
               "subprocess.run('ls', shell=True)\nsubprocess.Popen(f'ls {x}')\nsubprocess.run(['ls'], shell=False)\n"
               "'''never shell=True'''\n")
    assert len(shell_uses(planted)) == 6


def test_no_module_under_src_uses_a_shell():
    files = sorted((ROOT / "src").rglob("*.py"))
    assert files
    found = [hit for f in files for hit in shell_uses(f.read_text(encoding="utf-8"), str(f.relative_to(ROOT)))]
    assert found == []
    text = "\n".join(f.read_text(encoding="utf-8") for f in files)
    assert not re.search(r"\bos\.(system|popen)\s*\(", text)
