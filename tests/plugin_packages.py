"""Build and pip-install tiny third-party plugin packages, as a user would, into a target folder."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def install_plugin(target: Path, dist_name: str, module: str, source: str, entry_name: str | None = None) -> str:
    """Write a one-module distribution with a ``forensics.plugins`` entry point and ``pip install`` it into ``target``."""
    src = target.parent / f"src-{dist_name}"
    src.mkdir(parents=True, exist_ok=True)
    (src / f"{module}.py").write_text(source)
    (src / "pyproject.toml").write_text(
        "[build-system]\nrequires = ['setuptools>=61']\nbuild-backend = 'setuptools.build_meta'\n\n"
        f"[project]\nname = '{dist_name}'\nversion = '0.0.1'\n\n"
        f"[tool.setuptools]\npy-modules = ['{module}']\n\n"
        f"[project.entry-points.'forensics.plugins']\n{entry_name or module} = '{module}'\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-cache-dir", "--target", str(target), str(src)], check=True, capture_output=True, timeout=300)
    return str(target)
