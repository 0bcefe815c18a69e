"""Every setting of the service in one plain, JSON-serialisable object.

The same object travels to worker processes (as JSON) and Ray actors (pickled),
so it holds data only: paths as strings, no open handles.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidOptionsError

_MIB = 1024 * 1024


def service_home() -> Path:
    """``$FORENSICS_HOME/service`` (the default place of the job database and the spool)."""
    from ..weights import forensics_home

    return forensics_home() / "service"


def default_database_url() -> str:
    return f"sqlite:///{service_home() / 'jobs.sqlite3'}"


def normalise_database_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (the ``serve`` extra installs it); SQLite paths stay as given."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@dataclass
class ServiceConfig:
    """What ``forensics serve`` was asked to do. See docs/service.md for each setting."""

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = ""
    spool_dir: str = ""
    models: list[str] = field(default_factory=lambda: ["LIPFD-V1"])
    weights: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    workers: int = 1
    backend: str = "local"
    ray_address: str | None = None
    max_upload_bytes: int = 2048 * _MIB
    spool_quota_bytes: int = 10240 * _MIB
    queue_size: int = 100
    retention_s: float = 7 * 24 * 3600.0
    lease_s: float = 30.0
    max_attempts: int = 3
    poll_s: float = 0.2
    housekeeping_s: float = 5.0
    allow_roots: list[str] = field(default_factory=list)
    webhook_hosts: list[str] = field(default_factory=list)
    webhook_max_attempts: int = 8
    replica: str = ""

    def __post_init__(self) -> None:
        self.database_url = normalise_database_url(self.database_url or default_database_url())
        self.spool_dir = str(Path(self.spool_dir or service_home() / "spool").expanduser().resolve())
        self.allow_roots = [str(Path(r).expanduser().resolve()) for r in self.allow_roots]
        self.webhook_hosts = [h.strip().lower() for h in self.webhook_hosts if h.strip()]
        if not self.replica:
            import socket

            self.replica = f"{socket.gethostname()}:{self.port}:{os.getpid()}"
        if self.backend not in ("local", "ray"):
            raise InvalidOptionsError(f"unknown backend {self.backend!r}", hint="use 'local' or 'ray'")
        if self.weights and len(self.models) > 1:
            raise InvalidOptionsError("--weights applies to a single --models entry",
                                      hint="set each detector's weights variable instead (e.g. FORENSICS_LIPFD_WEIGHTS)")
        for name in ("max_upload_bytes", "spool_quota_bytes", "queue_size", "max_attempts"):
            if getattr(self, name) < 1:
                raise InvalidOptionsError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("lease_s", "poll_s", "housekeeping_s", "retention_s"):
            if not getattr(self, name) > 0:
                raise InvalidOptionsError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.workers < 0:
            raise InvalidOptionsError("workers must be >= 0", hint="0 runs an API-only replica that queues jobs for others")

    # -- limits the host applies to every input ----------------------------------------
    @property
    def upload_cap(self) -> int:
        """The upload size cap: ``max_upload_bytes``, lowered to the host's ``FORENSICS_MAX_FILE_MB``."""
        from ..media.limits import Limits

        host_cap = Limits.from_env().max_file_bytes
        return min(self.max_upload_bytes, host_cap) if host_cap else self.max_upload_bytes

    @property
    def load_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"device": self.device, "precision": self.precision}
        if self.weights:
            kwargs["weights"] = self.weights
        return kwargs

    @property
    def webhook_secret(self) -> bytes | None:
        """Read from ``FORENSICS_WEBHOOK_SECRET`` (never stored in the database or the config JSON)."""
        raw = os.environ.get("FORENSICS_WEBHOOK_SECRET", "")
        return raw.encode() if raw else None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServiceConfig:
        return cls(**json.loads(text))
