"""``--precision auto`` and the fidelity bound of the fast modes (docs/lipfd.md#precision)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from forensics_core.detector import cpu_has_native_bf16, resolve_precision
from lipfd_fixtures import V1

#: documented in docs/lipfd.md#precision: bf16 against the fp32 reference outputs of v1
BF16_SCORE_BOUND = 1e-2


def test_auto_resolves_by_hardware():
    assert resolve_precision("auto", "cuda") == "fp16"
    assert resolve_precision("auto", "cuda:1") == "fp16"
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert resolve_precision(None, "mps") == "fp32"
    for explicit in ("fp32", "bf16", "fp16"):
        assert resolve_precision(explicit, "cpu") == explicit


@pytest.mark.parametrize("command", ["analyze", "scan"])
def test_cli_offers_auto(command):
    out = subprocess.run([sys.executable, "-m", "forensics_core", command, "--help"], capture_output=True, text=True, check=True)
    assert "fp32|bf16|fp16|auto" in out.stdout.replace(" ", "")


@pytest.mark.slow
def test_auto_precision_result_names_the_choice_and_stays_within_the_bound(standin_checkpoint, v1_expected, tmp_path):
    if not cpu_has_native_bf16():
        pytest.skip("auto is fp32 on this CPU (no native bf16): test_lipfd_model covers fp32")
    env = {**os.environ, "FORENSICS_HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-m", "forensics_core", "analyze", str(V1 / "v1.mp4"), "--weights", str(standin_checkpoint),
                          "--audio", str(V1 / "v1.wav"), "--device", "cpu", "--precision", "auto", "--json", "-q"],
                         capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["precision"] == "bf16" and d["device"] == "cpu"
    assert d["options"]["batch_size"] == 25  # the region branch's bf16 default, recorded as used
    deviation = np.abs(np.array(d["metrics"]["window_scores"]) - np.array(v1_expected["scores"]))
    assert deviation.max() <= BF16_SCORE_BOUND
    assert deviation.max() > 0  # bf16 really ran: fp32 matches to 2e-7
