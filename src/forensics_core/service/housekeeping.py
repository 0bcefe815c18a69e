"""Housekeeping, in every replica: leases, retention, orphaned files, webhooks.

Each pass is a handful of guarded statements, so several replicas may run it at once:
whichever replica notices an expired lease first requeues the job, and a webhook is
held by the replica that claimed it.
"""
from __future__ import annotations

import threading

from ..logs import get_logger
from . import webhooks
from .config import ServiceConfig
from .jobs import JobStore
from .spool import Spool

log = get_logger("forensics.service.housekeeping")


class Housekeeper:
    def __init__(self, config: ServiceConfig, store: JobStore, spool: Spool):
        self.config, self.store, self.spool = config, store, spool
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="housekeeping")
        self.webhook_thread = threading.Thread(target=self._webhook_loop, daemon=True, name="webhooks")

    def start(self) -> None:
        self.thread.start()
        if self.config.webhook_hosts:
            self.webhook_thread.start()

    def close(self) -> None:
        self.stop.set()
        for t in (self.thread, self.webhook_thread):
            if t.is_alive():
                t.join(timeout=5)

    def _loop(self) -> None:
        while not self.stop.wait(self.config.housekeeping_s):
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - a database blip must not end housekeeping
                log.warning("housekeeping pass failed", error=repr(exc))

    def run_once(self) -> None:
        requeued, failed = self.store.recover_expired(self.config.max_attempts)
        if requeued or failed:
            log.warning("jobs whose worker stopped", requeued=requeued, failed=failed)
        for row in self.store.purge_expired(self.config.retention_s):
            self.spool.remove(row["spool_name"], row["report_name"])
        self.spool.sweep(self.store.files_in_use())

    def _webhook_loop(self) -> None:
        secret = self.config.webhook_secret
        while not self.stop.wait(0.5):
            try:
                for job in self.store.claim_webhooks(hold_s=60.0):
                    ok = webhooks.deliver(job, self.config.webhook_hosts, secret)
                    self.store.webhook_outcome(job["id"], delivered=ok, max_attempts=self.config.webhook_max_attempts)
            except Exception as exc:  # noqa: BLE001
                log.warning("webhook pass failed", error=repr(exc))
