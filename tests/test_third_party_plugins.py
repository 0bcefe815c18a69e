"""Third-party plugins installed as real distributions: discovered, isolated when broken, blockable."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from plugin_packages import install_plugin

GOOD = '''
from forensics_core import hookimpl, DetectorCard
from forensics_core.testing import FakeDetector


class ThirdParty(FakeDetector):
    card = FakeDetector.card.model_copy(update={"id": "THIRD-PARTY-V1", "name": "Third party", "aliases": []})


@hookimpl
def register_detectors(register):
    register(ThirdParty)
'''
BROKEN = "raise RuntimeError('this plugin is broken on import')\n"
DUPLICATE = '''
from forensics_core import hookimpl
from forensics_core.testing import FakeDetector
@hookimpl
def register_detectors(register):
    register(FakeDetector.__module__ + ":" + FakeDetector.__name__, card=FakeDetector.card.model_copy(update={"id": "LIPFD-V1", "aliases": []}))
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    return {
        "good": install_plugin(root / "good", "forensics-thirdparty", "thirdparty_plugin", GOOD),
        "broken": install_plugin(root / "broken", "forensics-broken", "broken_plugin", BROKEN),
        "duplicate": install_plugin(root / "dup", "forensics-dup", "dup_plugin", DUPLICATE),
    }


def cli(*args, paths=(), **env):
    return subprocess.run([sys.executable, "-m", "forensics_core", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(paths), **env})


def test_installed_plugin_shows_up(site):
    out = cli("models", "--json", paths=[site["good"]])
    assert out.returncode == 0, out.stderr
    ids = {m["id"]: m for m in json.loads(out.stdout)}
    assert {"LIPFD-V1", "THIRD-PARTY-V1"} <= set(ids) and ids["THIRD-PARTY-V1"]["plugin"] == "thirdparty_plugin"


def test_broken_plugin_is_listed_and_does_not_break_the_host(site):
    out = cli("plugins", "--json", paths=[site["good"], site["broken"]])
    assert out.returncode == 0, out.stderr
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["broken_plugin"]["status"] == "failed" and "broken on import" in plugins["broken_plugin"]["error"]
    assert plugins["thirdparty_plugin"]["status"] == "ok" and plugins["lipfd"]["status"] == "ok"
    models = cli("models", "--json", paths=[site["good"], site["broken"]])
    assert models.returncode == 0 and {"LIPFD-V1", "THIRD-PARTY-V1"} <= {m["id"] for m in json.loads(models.stdout)}


def test_strict_mode_makes_a_broken_plugin_fatal(site):
    out = cli("models", paths=[site["broken"]], FORENSICS_STRICT_PLUGINS="1")
    assert out.returncode != 0 and "broken_plugin" in out.stderr


def test_disabled_plugins_are_blocked(site):
    out = cli("plugins", "--json", paths=[site["good"], site["broken"]], FORENSICS_DISABLED_PLUGINS="broken_plugin,thirdparty_plugin")
    plugins = {p["name"]: p["status"] for p in json.loads(out.stdout)}
    assert plugins["broken_plugin"] == "disabled" and plugins["thirdparty_plugin"] == "disabled"
    models = cli("models", "--json", paths=[site["good"]], FORENSICS_DISABLED_PLUGINS="thirdparty_plugin")
    assert "THIRD-PARTY-V1" not in {m["id"] for m in json.loads(models.stdout)}


def test_duplicate_id_is_an_error_naming_both_plugins(site):
    out = cli("plugins", "--json", paths=[site["duplicate"]])
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["dup_plugin"]["status"] == "failed"
    assert "dup_plugin" in plugins["dup_plugin"]["error"] and "lipfd" in plugins["dup_plugin"]["error"]
    models = cli("models", "--json", paths=[site["duplicate"]])
    lipfd = {m["id"]: m for m in json.loads(models.stdout)}["LIPFD-V1"]
    assert lipfd["plugin"] == "lipfd"
