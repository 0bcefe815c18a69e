"""Webhooks: a signed POST to the client's callback URL when its job finishes.

* **Allowed hosts only.** The operator lists the hosts (``--webhook-host``, with an
  optional port); a callback URL elsewhere is refused when the job is submitted and
  checked again before every delivery, and redirects are not followed: the service
  cannot be used to reach other machines on its network.
* **Signed.** ``X-Forensics-Signature: sha256=HEX``, the HMAC-SHA256 of
  ``TIMESTAMP.BODY`` with the operator's secret (``FORENSICS_WEBHOOK_SECRET``);
  ``X-Forensics-Timestamp`` lets the receiver refuse replays (docs/service.md shows
  how to check both).
* **Retried with backoff.** A delivery that fails (no answer, not 2xx) is tried
  again after 2, 4, 8 ... seconds (at most an hour apart), up to
  ``webhook_max_attempts`` times. The delivery state lives in the job store, so
  retries survive restarts and any replica may send them.
* **At least once.** A receiver may see a delivery twice (a crash between sending
  and recording it); ``X-Forensics-Delivery`` (the job id) lets it deduplicate.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any

from ..logs import get_logger

log = get_logger("forensics.service.webhooks")


def check_callback(url: str, allowed: list[str]) -> str | None:
    """None when ``url`` may be called back, else the reason it may not."""
    if not allowed:
        return "this service sends no webhooks (the operator allowed no hosts: --webhook-host)"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "the callback URL must be http:// or https:// with a host"
    if parts.username or parts.password:
        return "the callback URL must not carry credentials"
    host = parts.hostname.lower()
    port = port or (443 if parts.scheme == "https" else 80)
    if host in allowed or f"{host}:{port}" in allowed:
        return None
    return f"host {host}:{port} is not one of the hosts this service calls back ({', '.join(allowed)})"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def payload(job: dict[str, Any]) -> dict[str, Any]:
    """What a delivery says: which job, how it ended, where to read the result (never the media)."""
    error = json.loads(job["error"]) if job.get("error") else None
    return {"event": "analysis.finished", "id": job["id"], "status": job["status"], "finished_at": job["finished_at"],
            "error": error, "href": f"/v1/analyses/{job['id']}"}


def deliver(job: dict[str, Any], allowed: list[str], secret: bytes, timeout_s: float = 10.0) -> bool:
    """One delivery attempt; True on a 2xx answer."""
    import requests

    url = job["callback_url"]
    reason = check_callback(url, allowed)
    if reason:
        log.warning("webhook not sent", job=job["id"], reason=reason)
        return False
    body = json.dumps(payload(job), separators=(",", ":")).encode()
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "forensics-service",
               "X-Forensics-Event": "analysis.finished", "X-Forensics-Delivery": job["id"],
               "X-Forensics-Timestamp": ts, "X-Forensics-Signature": sign(secret, ts, body)}
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=timeout_s, allow_redirects=False)
    except requests.RequestException as exc:
        log.info("webhook delivery failed", job=job["id"], error=type(exc).__name__)
        return False
    if 200 <= resp.status_code < 300:
        return True
    log.info("webhook refused", job=job["id"], status=resp.status_code)
    return False
