"""The hooks a forensics plugin may implement. Small on purpose."""
from __future__ import annotations

from typing import Protocol

import pluggy

hookspec = pluggy.HookspecMarker("forensics")
hookimpl = pluggy.HookimplMarker("forensics")


class RegisterDetector(Protocol):
    def __call__(self, detector: type | str, *, card: object | None = None, aliases: tuple[str, ...] = ()) -> None: ...


@hookspec
def register_detectors(register: RegisterDetector) -> None:
    """Register detectors: call ``register(DetectorClass)`` or ``register("module:Class", card=card)`` for each."""
