"""The job store: every state change of a job is one guarded SQL statement.

Why it is built this way:

* **Claims are atomic.** A worker claims the oldest queued job with
  ``UPDATE ... WHERE id = (SELECT id ... LIMIT 1 FOR UPDATE SKIP LOCKED) AND
  status = 'queued'``: on PostgreSQL replicas skip each other's locked rows, on
  SQLite the write lock serialises claims. Each claim gets a fresh ``claim_token``.
* **A job finishes exactly once.** ``finish`` only updates the row whose status is
  still ``running`` *and* whose token is the finishing worker's: a worker whose
  lease ran out (and whose job another worker took over), or whose job was cancelled
  or deleted meanwhile, changes nothing and drops its result.
* **Leases, not PIDs.** A running job carries ``lease_until``, renewed by its
  worker's heartbeat. After a crash (kill -9, power loss, a lost replica) the lease
  runs out and housekeeping puts the job back in the queue (up to ``max_attempts``
  claims, then ``failed`` with ``worker_lost``), whichever replica notices first.
* **The queue bound holds across replicas.** Submissions lock one row of
  ``forensics_queue_lock`` before counting the queue.
"""
from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from .store import TERMINAL, api_keys, jobs, queue_lock, workers  # noqa: F401 - api_keys: see keys.py

Row = dict[str, Any]


class QueueFull(Exception):
    """The bounded queue is full; ``retry_after`` is an estimate in seconds."""

    def __init__(self, depth: int, retry_after: int):
        super().__init__(f"the queue is full ({depth} jobs waiting)")
        self.depth, self.retry_after = depth, retry_after


def _row(r) -> Row | None:
    return None if r is None else dict(r._mapping)


class JobStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # ------------------------------------------------------------------ submission
    def queue_depth(self) -> int:
        with self.engine.begin() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status == "queued")).scalar_one()

    def retry_after(self, depth: int, workers_alive: int) -> int:
        """Seconds until a slot is likely free: the recent mean job time, spread over the workers."""
        with self.engine.begin() as conn:
            recent = conn.execute(
                sa.select((jobs.c.finished_at - jobs.c.started_at).label("d"))
                .where(jobs.c.status == "succeeded", jobs.c.started_at.is_not(None))
                .order_by(jobs.c.finished_at.desc()).limit(50)).scalars().all()
        mean = sum(recent) / len(recent) if recent else 5.0
        return int(min(300, max(1, math.ceil(mean / max(1, workers_alive)))))

    def find_idempotent(self, owner: str, key: str) -> Row | None:
        with self.engine.begin() as conn:
            return _row(conn.execute(sa.select(jobs).where(jobs.c.owner == owner, jobs.c.idempotency_key == key)).first())

    def submit(self, *, owner: str, models: Sequence[str], options: dict[str, dict[str, Any]], combine: str,
               media_name: str, media_bytes: int, spool_name: str | None, source_path: str | None,
               idempotency_key: str | None, callback_url: str | None, queue_size: int,
               workers_alive: int = 1) -> tuple[Row, bool]:
        """Insert a queued job; returns ``(job, created)``. An Idempotency-Key seen before gives the old job."""
        now = time.time()
        values = {
            "id": uuid.uuid4().hex, "owner": owner, "status": "queued", "progress": 0.0, "stage": "queued",
            "models": json.dumps(list(models)), "options": json.dumps(options), "combine": combine,
            "media_name": media_name, "media_bytes": media_bytes, "spool_name": spool_name,
            "source_path": source_path, "idempotency_key": idempotency_key, "callback_url": callback_url,
            "created_at": now, "attempts": 0, "webhook_attempts": 0,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.select(queue_lock.c.id).where(queue_lock.c.id == 1).with_for_update())
                if idempotency_key is not None:
                    old = conn.execute(sa.select(jobs).where(jobs.c.owner == owner, jobs.c.idempotency_key == idempotency_key)).first()
                    if old is not None:
                        return _row(old), False
                depth = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status == "queued")).scalar_one()
                if depth >= queue_size:
                    raise QueueFull(depth, 0)
                conn.execute(sa.insert(jobs).values(**values))
        except QueueFull as exc:
            raise QueueFull(exc.depth, self.retry_after(exc.depth, workers_alive)) from None
        except sa.exc.IntegrityError:
            old = self.find_idempotent(owner, idempotency_key) if idempotency_key else None
            if old is None:
                raise
            return old, False
        return self.get(values["id"]), True

    # ------------------------------------------------------------------ reading
    def get(self, job_id: str, owner: str | None = None) -> Row | None:
        q = sa.select(jobs).where(jobs.c.id == job_id)
        if owner is not None:
            q = q.where(jobs.c.owner == owner)
        with self.engine.begin() as conn:
            return _row(conn.execute(q).first())

    def list(self, owner: str, *, limit: int, offset: int, status: str | None = None) -> tuple[list[Row], int]:
        cond = [jobs.c.owner == owner] + ([jobs.c.status == status] if status else [])
        with self.engine.begin() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(*cond)).scalar_one()
            rows = conn.execute(sa.select(jobs).where(*cond).order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
                                .limit(limit).offset(offset)).all()
        return [_row(r) for r in rows], total

    # ------------------------------------------------------------------ cancel / delete
    def cancel(self, job_id: str, owner: str) -> Row | None:
        """queued/running -> cancelled (a running worker notices at its next heartbeat). Finished jobs stay."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id, jobs.c.owner == owner,
                                               jobs.c.status.in_(("queued", "running")))
                         .values(status="cancelled", stage="cancelled", finished_at=time.time(),
                                 claim_token=None, lease_until=None))
            return _row(conn.execute(sa.select(jobs).where(jobs.c.id == job_id, jobs.c.owner == owner)).first())

    def delete(self, job_id: str, owner: str) -> Row | None:
        """Remove the job (the caller removes its files); returns the removed row, or None if none."""
        with self.engine.begin() as conn:
            row = _row(conn.execute(sa.select(jobs).where(jobs.c.id == job_id, jobs.c.owner == owner).with_for_update()).first())
            if row is not None:
                conn.execute(sa.delete(jobs).where(jobs.c.id == job_id))
            return row

    # ------------------------------------------------------------------ workers
    def claim(self, lease_s: float) -> Row | None:
        token, now = uuid.uuid4().hex, time.time()
        oldest = (sa.select(jobs.c.id).where(jobs.c.status == "queued")
                  .order_by(jobs.c.created_at, jobs.c.id).limit(1).with_for_update(skip_locked=True).scalar_subquery())
        with self.engine.begin() as conn:
            job_id = conn.execute(
                sa.update(jobs).where(jobs.c.id == oldest, jobs.c.status == "queued")
                .values(status="running", stage="starting", claim_token=token, lease_until=now + lease_s,
                        attempts=jobs.c.attempts + 1, started_at=sa.func.coalesce(jobs.c.started_at, now))
                .returning(jobs.c.id)).scalar_one_or_none()
            if job_id is None:
                return None
            return _row(conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first())

    def _mine(self, job_id: str, token: str):
        return (jobs.c.id == job_id, jobs.c.claim_token == token, jobs.c.status == "running")

    def heartbeat(self, job_id: str, token: str, lease_s: float, *, progress: float | None = None,
                  stage: str | None = None) -> bool:
        """Renew the lease (and record progress); False when the job is no longer this worker's."""
        values: dict[str, Any] = {"lease_until": time.time() + lease_s}
        if progress is not None:
            values["progress"] = progress
        if stage is not None:
            values["stage"] = stage[:64]
        with self.engine.begin() as conn:
            return conn.execute(sa.update(jobs).where(*self._mine(job_id, token)).values(**values)).rowcount == 1

    def finish(self, job_id: str, token: str, *, status: str, result: str | None, error: dict | None,
               report_name: str | None = None) -> bool:
        """The one terminal transition of a claimed job; False (nothing changed) if it is no longer ours.

        The upload is forgotten here (``spool_name`` cleared): the worker deletes the file next,
        and housekeeping deletes any file no job refers to, should the worker die in between.
        """
        with self.engine.begin() as conn:
            webhook = sa.case((jobs.c.callback_url.is_not(None), "pending"), else_=None)
            done = conn.execute(sa.update(jobs).where(*self._mine(job_id, token)).values(
                status=status, stage="done", progress=1.0, result=result,
                error=None if error is None else json.dumps(error), report_name=report_name,
                finished_at=time.time(), lease_until=None, claim_token=None, spool_name=None,
                webhook_state=webhook, webhook_next_at=time.time())).rowcount
        return done == 1

    def release(self, job_id: str, token: str) -> bool:
        """A worker shutting down gives its job back to the queue (the attempt does not count)."""
        with self.engine.begin() as conn:
            return conn.execute(sa.update(jobs).where(*self._mine(job_id, token)).values(
                status="queued", stage="queued", progress=0.0, claim_token=None, lease_until=None,
                attempts=jobs.c.attempts - 1)).rowcount == 1

    # ------------------------------------------------------------------ housekeeping
    def recover_expired(self, max_attempts: int) -> tuple[int, int]:
        """Running jobs whose lease ran out: back to the queue, or failed after ``max_attempts`` claims."""
        now = time.time()
        expired = (jobs.c.status == "running", jobs.c.lease_until < now)
        lost = {"type": "WorkerLost", "code": "worker_lost",
                "message": f"the worker running this job stopped {max_attempts} times (crash, kill or lost replica)",
                "hint": "check the service's log; the media may crash a decoder: try it with `forensics analyze`"}
        with self.engine.begin() as conn:
            failed = conn.execute(sa.update(jobs).where(*expired, jobs.c.attempts >= max_attempts).values(
                status="failed", stage="done", error=json.dumps(lost), finished_at=now, claim_token=None,
                lease_until=None, webhook_state=sa.case((jobs.c.callback_url.is_not(None), "pending"), else_=None),
                webhook_next_at=now)).rowcount
            requeued = conn.execute(sa.update(jobs).where(*expired, jobs.c.attempts < max_attempts).values(
                status="queued", stage="queued", progress=0.0, claim_token=None, lease_until=None)).rowcount
        return requeued, failed

    def purge_expired(self, retention_s: float) -> list[Row]:
        """Delete finished jobs older than the retention period; returns them (their files go next)."""
        cutoff = time.time() - retention_s
        with self.engine.begin() as conn:
            rows = [_row(r) for r in conn.execute(
                sa.select(jobs.c.id, jobs.c.spool_name, jobs.c.report_name)
                .where(jobs.c.status.in_(TERMINAL), jobs.c.finished_at < cutoff,
                       sa.or_(jobs.c.webhook_state.is_(None), jobs.c.webhook_state != "pending"))
                .limit(1000)).all()]
            if rows:
                conn.execute(sa.delete(jobs).where(jobs.c.id.in_([r["id"] for r in rows])))
        return rows

    def files_in_use(self) -> set[str]:
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(jobs.c.spool_name, jobs.c.report_name)).all()
        return {name for row in rows for name in row if name}

    def drop_upload(self, job_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(spool_name=None))

    # ------------------------------------------------------------------ webhooks
    def claim_webhooks(self, hold_s: float, limit: int = 20) -> list[Row]:
        """Pending deliveries that are due, held for ``hold_s`` so no other replica sends them meanwhile."""
        now = time.time()
        with self.engine.begin() as conn:
            ids = conn.execute(sa.select(jobs.c.id).where(jobs.c.webhook_state == "pending", jobs.c.webhook_next_at <= now)
                               .order_by(jobs.c.webhook_next_at).limit(limit).with_for_update(skip_locked=True)).scalars().all()
            if not ids:
                return []
            conn.execute(sa.update(jobs).where(jobs.c.id.in_(ids)).values(webhook_next_at=now + hold_s))
            return [_row(r) for r in conn.execute(sa.select(jobs).where(jobs.c.id.in_(ids))).all()]

    def webhook_outcome(self, job_id: str, *, delivered: bool, max_attempts: int) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(jobs.c.webhook_attempts).where(jobs.c.id == job_id)).first()
            if row is None:
                return
            attempts = row[0] + 1
            if delivered:
                values = {"webhook_state": "delivered"}
            elif attempts >= max_attempts:
                values = {"webhook_state": "failed"}
            else:
                values = {"webhook_next_at": time.time() + min(3600.0, 2.0 ** attempts)}
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(webhook_attempts=attempts, **values))

    # ------------------------------------------------------------------ the workers' registry
    def register_worker(self, worker_id: str, replica: str, pid: int) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(workers).where(workers.c.id == worker_id))
            conn.execute(sa.insert(workers).values(id=worker_id, replica=replica, pid=pid, models="[]", state="loading",
                                                   started_at=now, heartbeat_at=now))

    def worker_state(self, worker_id: str, state: str, *, models: Sequence[str] = (), error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(workers).where(workers.c.id == worker_id).values(
                state=state, models=json.dumps(list(models)), error=error, heartbeat_at=time.time()))

    def worker_heartbeat(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(workers).where(workers.c.id == worker_id).values(heartbeat_at=time.time()))

    def remove_worker(self, worker_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(workers).where(workers.c.id == worker_id))

    def live_workers(self, max_age_s: float) -> list[Row]:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(workers).where(workers.c.heartbeat_at < now - max(600.0, 10 * max_age_s)))
            return [_row(r) for r in conn.execute(sa.select(workers).where(workers.c.heartbeat_at >= now - max_age_s)).all()]
