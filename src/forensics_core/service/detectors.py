"""GET /v1/detectors: every registered detector, whether this service runs it and has it loaded, its weights.

A weights file's SHA-256 takes seconds for a large checkpoint, so it is computed
once per (path, size, mtime) and remembered.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from ..errors import ForensicsError
from .config import ServiceConfig
from .schemas import DetectorInfo, WeightsState
from .submission import Served


class DetectorCatalog:
    def __init__(self, config: ServiceConfig, served: Served):
        self.config, self.served = config, served
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def _sha256(self, path: str) -> str:
        from ..weights import sha256_file

        st = os.stat(path)
        key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            if key not in self._hashes:
                self._hashes[key] = sha256_file(path)
            return self._hashes[key]

    def weights(self, card) -> WeightsState | None:
        from ..weights import resolve_weights

        if card.weights is None and not (self.config.weights and card.id in self.served.classes):
            return None
        explicit = self.config.weights if card.id in self.served.classes else None
        expected = card.weights.sha256 if card.weights else None
        try:
            path = resolve_weights(card.id, card.weights, explicit)
        except ForensicsError as exc:
            return WeightsState(present=False, expected_sha256=expected, problem=exc.message)
        digest = self._sha256(os.fspath(path))
        return WeightsState(present=True, sha256=digest, expected_sha256=expected,
                            matches=None if expected is None else digest == expected)

    def describe(self, loaded: set[str]) -> list[DetectorInfo]:
        from .. import list_models

        cards: dict[str, Any] = {}
        for entry in list_models():
            cards[entry["id"]] = entry
        for cid, klass in self.served.classes.items():
            cards.setdefault(cid, klass.card.model_dump(mode="json"))
        out = []
        for cid in sorted(cards):
            klass = self.served.classes.get(cid)
            card = klass.card if klass is not None else _card(cards[cid])
            out.append(DetectorInfo(id=cid, served=klass is not None, loaded=cid in loaded,
                                    weights=self.weights(card), card=cards[cid]))
        return out


def _card(data: dict[str, Any]):
    from ..detector import DetectorCard

    return DetectorCard.model_validate({k: v for k, v in data.items() if k in DetectorCard.model_fields})
