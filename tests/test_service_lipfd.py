"""LIPFD-V1 behind the service (stand-in weights): the job's result is the CLI's, number for number."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from service_fixtures import wait_for
from test_service_api import TIMING, _strip, submit

V1 = Path(__file__).parent / "data" / "lipfd_v1" / "v1.mp4"


@pytest.mark.slow
def test_lipfd_job_equals_the_cli(services, standin_checkpoint):
    weights = str(standin_checkpoint)
    svc = services("--models", "LIPFD-V1", "--weights", weights, "--device", "cpu", start=False, name="lipfd")
    # The CLI first, in its own process, so that one LipFD model is in memory at a time.
    # (n_extract=3: three windows instead of ten keep this test short; the options travel to both alike.)
    # Its own $TMPDIR: the service's must stay empty, and loading LipFD leaves a torch cache folder there.
    cli_tmp = svc.root / "cli-tmp"
    cli_tmp.mkdir()
    run = subprocess.run([sys.executable, "-m", "forensics_core", "analyze", str(V1), "--weights", weights, "--device", "cpu",
                          "-o", "n_extract=3", "--json", "--quiet"], env={**svc.env, "TMPDIR": str(cli_tmp)},
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    cli = json.loads(run.stdout)
    svc.start(timeout=300)
    client = httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {svc.new_key()}"}, timeout=60)
    dets = {d["id"]: d for d in client.get("/v1/detectors").json()["detectors"]}
    assert dets["LIPFD-V1"]["served"] and dets["LIPFD-V1"]["loaded"] and dets["LIPFD-V1"]["weights"]["present"]
    assert len(dets["LIPFD-V1"]["weights"]["sha256"]) == 64
    job = wait_for(client, submit(client, V1, models="LIPFD-V1", options={"n_extract": 3}).headers["Location"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["media_path"] == "v1.mp4"
    assert job["result"]["media"]["path"] == "v1.mp4"  # the probe's path too: no server path in a result
    job["result"]["media"]["path"] = cli["media"]["path"]
    assert _strip(job["result"], TIMING | {"media_path"}) == _strip(cli, TIMING | {"media_path"})
    assert len(job["result"]["windows"]) == 3 and job["result"]["score"] == cli["score"]
    assert "v1.mp4" in client.get(job["links"]["report"]).text
