"""The web page at ``/``: one HTML file with its CSS and JavaScript inline (no external assets).

It is served with a Content-Security-Policy that allows its own inline script (by
nonce) and requests to this service only; the report it shows sits in a sandboxed
frame that runs no script.
"""
from __future__ import annotations

import functools
from importlib import resources


@functools.lru_cache(maxsize=1)
def _template() -> str:
    return resources.files(__package__).joinpath("index.html").read_text(encoding="utf-8")


def render(nonce: str) -> str:
    return _template().replace("{{NONCE}}", nonce)


def headers(nonce: str) -> dict[str, str]:
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
           "connect-src 'self'; img-src 'self' data: blob:; frame-src 'self'; base-uri 'none'; "
           "form-action 'none'; frame-ancestors 'none'")
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store"}


def report_headers() -> dict[str, str]:
    """The report is data: it may style itself and show inline images, but reach nothing."""
    csp = ("default-src 'none'; style-src 'unsafe-inline'; img-src data: blob:; script-src 'unsafe-inline'; "
           "base-uri 'none'; form-action 'none'")
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store"}
