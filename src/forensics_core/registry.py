"""Detector registry: ids, aliases and lazy classes.

Plugins register a class or a ``"module:Class"`` string with its card; the class
is imported only when a detector is loaded, so listing stays fast. A duplicate id
or alias is an error that names both plugins (no silent overwrite).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from .detector import Detector, DetectorCard
from .errors import ForensicsError, UnknownDetectorError


class DuplicateDetectorError(ForensicsError):
    code = "duplicate_detector"


@dataclass
class DetectorEntry:
    card: DetectorCard
    plugin: str
    target: type[Detector] | str
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def detector_class(self) -> type[Detector]:
        if isinstance(self.target, str):
            module, _, attr = self.target.partition(":")
            self.target = getattr(importlib.import_module(module), attr)
        return self.target

    def to_dict(self) -> dict:
        return {**self.card.model_dump(mode="json"), "aliases": list(self.aliases), "plugin": self.plugin}


class Registry:
    def __init__(self) -> None:
        self._entries: dict[str, DetectorEntry] = {}
        self._names: dict[str, str] = {}  # upper-cased id or alias -> id

    def register(self, target: type[Detector] | str, *, plugin: str, card: DetectorCard | None = None, aliases: tuple[str, ...] | list[str] = ()) -> DetectorEntry:
        if card is None:
            if isinstance(target, str):
                raise TypeError("register('module:Class') needs card=")
            card = target.card
        names = [card.id, *card.aliases, *aliases]
        for name in names:
            owner = self._names.get(name.upper())
            if owner is not None:
                other = self._entries[owner].plugin
                raise DuplicateDetectorError(
                    f"detector id or alias {name!r} registered by plugin {plugin!r} is already registered by plugin {other!r}",
                    hint=f"uninstall one of them, or disable one with FORENSICS_DISABLED_PLUGINS={plugin}",
                )
        entry = DetectorEntry(card=card, plugin=plugin, target=target, aliases=tuple(dict.fromkeys([*card.aliases, *aliases])))
        self._entries[card.id] = entry
        for name in names:
            self._names[name.upper()] = card.id
        return entry

    def unregister(self, detector_id: str) -> None:
        entry = self._entries.pop(self.get(detector_id).card.id)
        for name in [entry.card.id, *entry.aliases]:
            self._names.pop(name.upper(), None)

    def get(self, name: str) -> DetectorEntry:
        key = self._names.get(name.upper())
        if key is None:
            raise UnknownDetectorError(name, sorted(self._entries))
        return self._entries[key]

    def __iter__(self):
        return iter(sorted(self._entries.values(), key=lambda e: e.card.id))

    def __len__(self) -> int:
        return len(self._entries)
