"""structlog set-up: logs go to stderr, as console lines or JSON; results never do."""
from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure(level: str = "warning", fmt: str = "console") -> None:
    """Configure structlog for the process. ``fmt``: ``console`` or ``json``."""
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=lambda *args: structlog.PrintLogger(sys.stderr),  # resolved per call: follows sys.stderr swaps
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "forensics"):
    """A logger that writes to stderr even when the host application never configured structlog."""
    if not structlog.is_configured():
        configure()
    return structlog.get_logger(name)


bind_contextvars = structlog.contextvars.bind_contextvars
bound_contextvars = structlog.contextvars.bound_contextvars
