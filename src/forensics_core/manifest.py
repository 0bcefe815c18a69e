"""``plugin_manifest.yaml``: the detectors this distribution ships, as data.

Listing detectors reads this file; it never imports torch or a detector's code.
The file sits at the top of the source tree and is shipped inside the wheel as
``forensics_core/plugin_manifest.yaml``.
"""
from __future__ import annotations

import functools
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .detector import DetectorCard

MANIFEST_NAME = "plugin_manifest.yaml"


class PluginManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    manifest_version: int = 1
    distribution: str
    detectors: list[DetectorCard]

    def card(self, detector_id: str) -> DetectorCard:
        for card in self.detectors:
            if card.id.upper() == detector_id.upper():
                return card
        raise KeyError(detector_id)


def manifest_path() -> Path:
    """The shipped copy inside the package, else the source tree's (editable installs, tests)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / MANIFEST_NAME, here.parents[1] / MANIFEST_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{MANIFEST_NAME} is missing from the installation ({here})")


def load_manifest(path: Path) -> PluginManifest:
    import yaml

    with open(path, encoding="utf-8") as fh:
        return PluginManifest.model_validate(yaml.safe_load(fh))


@functools.lru_cache(maxsize=1)
def builtin_manifest() -> PluginManifest:
    return load_manifest(manifest_path())


def _sync_options_schemas(path: Path) -> None:
    """Rewrite each built-in card's options_schema from its detector's Options model."""
    import importlib

    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    header = "".join(line for line in path.read_text(encoding="utf-8").splitlines(keepends=True) if line.startswith("#"))
    for card in data["detectors"]:
        module, _, attr = card["entry"].partition(":")
        card["options_schema"] = getattr(importlib.import_module(module), attr).Options.model_json_schema()
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--sync"]:
        sys.exit("usage: python -m forensics_core.manifest --sync")
    _sync_options_schemas(Path(__file__).resolve().parents[2] / MANIFEST_NAME)
