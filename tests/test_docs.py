"""The docs stay true: README commands, hooks documented and tested, the example plugin runs."""
from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from forensics_core import hookspecs

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())[:2]


def test_ci_runs_the_readme_test_command():
    test_command = readme_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_setup_command_installs_and_runs_the_main_job():
    setup = readme_commands()[0]
    assert "pip install ." in setup and "forensics analyze" in setup
    target = setup.split("forensics analyze", 1)[1].split()[0]
    assert (ROOT / target).is_file()


def hooks() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "forensics_spec")]


def test_hooks_are_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name in hooks():
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"### `{name}({params})`" in docs


def test_hooks_have_tests():
    tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    for name in hooks():
        assert f"def test_hook_{name}" in tests


def test_hook_register_detectors():
    """The hook receives the host's register callback; registered detectors appear and load."""
    import types

    import forensics_core
    from forensics_core.plugins import get_host
    from forensics_core.testing import FakeDetector

    seen = []

    @forensics_core.hookimpl
    def register_detectors(register):
        seen.append(register)
        register(FakeDetector, aliases=("HOOK-TEST",))

    host = get_host()
    status = host.register_plugin(types.SimpleNamespace(register_detectors=register_detectors), name="hook-test")
    try:
        assert status.status == "ok" and status.detectors == ["FAKE-VISUAL"] and callable(seen[0])
        assert isinstance(forensics_core.get_detector("hook-test"), FakeDetector)
    finally:
        host.unregister_plugin("hook-test")
    assert "FAKE-VISUAL" not in {m["id"] for m in forensics_core.list_models()}


def test_docs_example_plugin_installs_and_runs(tmp_path):
    import shutil

    target = tmp_path / "site"
    example = shutil.copytree(ROOT / "docs" / "examples" / "forensics-brightness", tmp_path / "example")  # builds write beside the sources
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-cache-dir",
                    "--target", str(target), str(example)],
                   check=True, capture_output=True, timeout=300, cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(target)}
    models = subprocess.run([sys.executable, "-m", "forensics_core", "models", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert "BRIGHTNESS-V1" in {m["id"] for m in json.loads(models.stdout)}
    run = subprocess.run([sys.executable, "-m", "forensics_core", "analyze", str(ROOT / "tests/data/lipfd_v1/v1.mp4"),
                          "--model", "BRIGHTNESS-V1", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["status"] == "ok"


@pytest.mark.parametrize("doc", ["architecture.md", "plugins.md", "lipfd.md", "errors.md", "cli.md", "service.md"])
def test_docs_exist_and_links_resolve(doc):
    text = (ROOT / "docs" / doc).read_text()
    for link in re.findall(r"\]\(([^)#:]+\.md)\)", text):
        assert (ROOT / "docs" / link).is_file(), link
