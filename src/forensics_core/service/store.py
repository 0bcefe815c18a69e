"""The job database: tables (SQLAlchemy Core) and an engine for SQLite or PostgreSQL.

One code path for both. What differs is set up here, once:

* SQLite (the default: a file, nothing to install) runs in WAL mode and every
  transaction starts with ``BEGIN IMMEDIATE``, so transactions that read then write
  take the write lock up front instead of failing with "database is locked" when
  another process (a worker, a second API process) commits in between.
* PostgreSQL (several replicas on one queue) claims jobs with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` (see :mod:`.jobs`); on SQLite that clause
  renders as nothing and the single-writer lock gives the same guarantee.

Times are UNIX seconds (floats) so both databases compare them the same way.
Documents (results, options) are JSON text: stored and returned byte for byte.
"""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

metadata = sa.MetaData()

TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("queued", "running", *TERMINAL)

jobs = sa.Table(
    "forensics_jobs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(32), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("stage", sa.String(64), nullable=False, default="queued"),
    sa.Column("models", sa.Text, nullable=False),          # JSON list of detector ids
    sa.Column("options", sa.Text, nullable=False),         # JSON {detector id: {option: value}}
    sa.Column("combine", sa.String(16), nullable=False),
    sa.Column("media_name", sa.String(255), nullable=False),  # display only; never a path
    sa.Column("media_bytes", sa.BigInteger, nullable=False),
    sa.Column("spool_name", sa.String(64)),                 # a name the spool made up, or NULL
    sa.Column("source_path", sa.Text),                      # a path under an allowed root, or NULL
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("callback_url", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("claim_token", sa.String(32)),
    sa.Column("lease_until", sa.Float),
    sa.Column("result", sa.Text),                           # the CLI's JSON document, as text
    sa.Column("error", sa.Text),                            # JSON {type, code, message, hint}
    sa.Column("report_name", sa.String(64)),                # the HTML report's file in the spool
    sa.Column("webhook_state", sa.String(16)),              # pending, delivered, failed
    sa.Column("webhook_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("webhook_next_at", sa.Float),
    sa.UniqueConstraint("owner", "idempotency_key", name="uq_forensics_jobs_idempotency"),
)

api_keys = sa.Table(
    "forensics_api_keys", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

workers = sa.Table(
    "forensics_workers", metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("replica", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("models", sa.Text, nullable=False),          # JSON list of loaded detector ids
    sa.Column("state", sa.String(16), nullable=False),     # loading, ready, failed
    sa.Column("error", sa.Text),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)

#: one row; submissions lock it (FOR UPDATE) so the queue bound holds across replicas
queue_lock = sa.Table("forensics_queue_lock", metadata, sa.Column("id", sa.Integer, primary_key=True))


def _sqlite_setup(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, create: bool = True) -> sa.Engine:
    """An engine for ``url``; with ``create``, the tables (and the SQLite file's folder) are made."""
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sa_url, connect_args={"timeout": 30})
        _sqlite_setup(engine)
    else:
        engine = sa.create_engine(sa_url, pool_pre_ping=True)
    if create:
        try:
            metadata.create_all(engine)
        except sa.exc.DBAPIError:  # two replicas creating the tables at once: the loser checks again
            import time

            time.sleep(0.5)
            metadata.create_all(engine)
        with engine.begin() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(queue_lock)).scalar_one() == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(queue_lock).values(id=1))
                except sa.exc.IntegrityError:
                    pass  # another replica made it first
    return engine


def describe_url(url: str) -> str:
    """The URL without its password, for logs and /readyz."""
    return sa.make_url(url).render_as_string(hide_password=True)
