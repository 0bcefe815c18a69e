"""API keys: random tokens shown once, stored as SHA-256 hashes.

A key is 32 random bytes (``fsk_`` + URL-safe base64), so a fast hash is enough:
there is nothing to brute-force, unlike a password, and every request can be
checked with one indexed lookup. The database never holds a usable key; a revoked
key stops working at once (no cache).
"""
from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Any

import sqlalchemy as sa

from ..errors import ForensicsError
from .store import api_keys

PREFIX = "fsk_"


class KeyManagementError(ForensicsError):
    code = "key_error"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def create(self, name: str) -> tuple[str, dict[str, Any]]:
        """A new key: returns ``(key, record)``; the key itself is not stored anywhere."""
        name = name.strip()
        if not name or len(name) > 200:
            raise KeyManagementError("a key needs a name of 1 to 200 characters", hint="forensics serve keys create --name TEAM")
        key = PREFIX + secrets.token_urlsafe(32)
        record = {"id": uuid.uuid4().hex, "name": name, "key_hash": hash_key(key), "prefix": key[:10],
                  "created_at": time.time(), "revoked_at": None}
        with self.engine.begin() as conn:
            conn.execute(sa.insert(api_keys).values(**record))
        return key, _public(record)

    def list(self) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [_public(dict(r._mapping)) for r in rows]

    def revoke(self, ident: str) -> list[dict[str, Any]]:
        """Revoke by id, id prefix (8+ characters), key prefix or name; returns the revoked keys."""
        ident = ident.strip()
        with self.engine.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(api_keys).where(api_keys.c.revoked_at.is_(None))).all()]
            hits = [r for r in rows if ident and (r["id"] == ident or r["name"] == ident or r["prefix"] == ident
                                                  or (len(ident) >= 8 and r["id"].startswith(ident)))]
            if len(hits) > 1 and not all(r["name"] == ident for r in hits):
                raise KeyManagementError(f"{ident!r} matches {len(hits)} keys", hint="pass the key id from `forensics serve keys list`")
            now = time.time()
            for r in hits:
                conn.execute(sa.update(api_keys).where(api_keys.c.id == r["id"]).values(revoked_at=now))
                r["revoked_at"] = now
        if not hits:
            raise KeyManagementError(f"no active key matches {ident!r}", hint="see `forensics serve keys list`")
        return [_public(r) for r in hits]

    def verify(self, key: str) -> str | None:
        """The key's id when ``key`` is a valid, unrevoked key; else None."""
        if not key.startswith(PREFIX) or len(key) > 200:
            return None
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(api_keys.c.id, api_keys.c.key_hash)
                               .where(api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None))).first()
        if row is None or not secrets.compare_digest(row.key_hash, hash_key(key)):
            return None
        return row.id


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """What may be shown: never the hash."""
    return {k: record[k] for k in ("id", "name", "prefix", "created_at", "revoked_at")}
