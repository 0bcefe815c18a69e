"""Plugin discovery: entry points in the ``forensics.plugins`` group, each isolated.

Every plugin (the built-in LipFD included) arrives through an entry point. Each
one is imported, registered, checked and asked for its detectors inside its own
try/except: a broken plugin is recorded (``forensics plugins`` shows it) and the
host carries on. ``FORENSICS_STRICT_PLUGINS=1`` makes any failure fatal;
``FORENSICS_DISABLED_PLUGINS=a,b`` blocks plugins by entry-point name.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Literal

import pluggy

from . import hookspecs
from .errors import PluginLoadError
from .logs import get_logger
from .registry import Registry

ENTRY_POINT_GROUP = "forensics.plugins"
HOST_DISTRIBUTION = "forensics"
log = get_logger("forensics.plugins")


@dataclass
class PluginStatus:
    name: str
    status: Literal["ok", "failed", "disabled"]
    source: str = ""
    error: str | None = None
    detectors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "source": self.source, "error": self.error, "detectors": self.detectors}


def _env_list(name: str) -> set[str]:
    return {item.strip() for item in os.environ.get(name, "").split(",") if item.strip()}


def _strict() -> bool:
    return os.environ.get("FORENSICS_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes", "on"}


class PluginHost:
    """Owns the pluggy manager, the registry and the record of each plugin's fate."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("forensics")
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.statuses: dict[str, PluginStatus] = {}
        self._loaded = False
        self._lock = threading.RLock()

    # -- loading ---------------------------------------------------------------------
    def ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            disabled = _env_list("FORENSICS_DISABLED_PLUGINS")
            # this distribution's own plugins first, so a third party cannot take a built-in id
            def order(ep):
                return (not (ep.dist and ep.dist.name == HOST_DISTRIBUTION), ep.name)

            for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=order):
                source = f"{ep.value} ({ep.dist.name} {ep.dist.version})" if ep.dist else ep.value
                if ep.name in disabled:
                    self.pm.set_blocked(ep.name)
                    self.statuses[ep.name] = PluginStatus(ep.name, "disabled", source)
                    continue
                self._add(ep.name, source, ep.load)

    def register_plugin(self, plugin: object, name: str | None = None) -> PluginStatus:
        """Register an in-process plugin object or module (tests, notebooks) through the same path."""
        with self._lock:
            self.ensure_loaded()
            name = name or getattr(plugin, "__name__", None) or repr(plugin)
            return self._add(name, f"in-process {name}", lambda: plugin)

    def unregister_plugin(self, name: str) -> None:
        with self._lock:
            status = self.statuses.pop(name, None)
            for detector_id in status.detectors if status else []:
                self.registry.unregister(detector_id)
            plugin = self.pm.get_plugin(name)
            if plugin is not None:
                self.pm.unregister(plugin, name=name)

    def _add(self, name: str, source: str, obtain) -> PluginStatus:
        status = PluginStatus(name, "ok", source)
        self.statuses[name] = status
        registered: list[str] = []
        try:
            plugin = obtain()
            self.pm.register(plugin, name=name)
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError:
                self.pm.unregister(plugin, name=name)
                raise
            impl = next((i for i in self.pm.hook.register_detectors.get_hookimpls() if i.plugin_name == name), None)
            if impl is not None:

                def register(detector, *, card=None, aliases=()):
                    entry = self.registry.register(detector, plugin=name, card=card, aliases=tuple(aliases))
                    registered.append(entry.card.id)

                impl.function(**{arg: register for arg in impl.argnames if arg == "register"})
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            for detector_id in registered:
                self.registry.unregister(detector_id)
            plugin_obj = self.pm.get_plugin(name)
            if plugin_obj is not None:
                self.pm.unregister(plugin_obj, name=name)
            status.status, status.error = "failed", f"{type(exc).__name__}: {exc}"
            log.warning("plugin failed to load", plugin=name, error=status.error)
            if _strict():
                raise PluginLoadError(name, status.error, hint="fix or uninstall the plugin, or unset FORENSICS_STRICT_PLUGINS") from exc
            return status
        status.detectors = registered
        return status


_host: PluginHost | None = None
_host_lock = threading.Lock()


def get_host() -> PluginHost:
    global _host
    with _host_lock:
        if _host is None:
            _host = PluginHost()
    _host.ensure_loaded()
    return _host


def reset_host() -> None:
    """Forget every plugin (tests; after changing FORENSICS_* variables)."""
    global _host
    with _host_lock:
        _host = None
