"""``forensics serve`` and ``forensics serve keys create|list|revoke``.

FastAPI, uvicorn and SQLAlchemy are imported inside the commands only (the
``serve`` extra: ``pip install 'forensics[serve]'``), so ``forensics --help`` stays fast.
"""
from __future__ import annotations

import json
import os
import sys

import click

from ..errors import EXIT_OTHER, ForensicsError
from .common import _fail

_DB_HELP = "Job database URL: sqlite:///FILE or postgresql://USER@HOST/DB (default: $FORENSICS_HOME/service/jobs.sqlite3)."


def _need_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        click.echo(f"error: forensics serve needs the 'serve' extra ({exc.name} is missing)", err=True)
        click.echo("hint: pip install 'forensics[serve]'", err=True)
        sys.exit(EXIT_OTHER)


@click.group("serve", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="Worker processes (or Ray actors), each with the models loaded once; 0: an API-only replica.")
@click.option("--models", "-m", "models", multiple=True, default=("LIPFD-V1",), show_default=True,
              help="Detector to serve (repeatable): an id, an alias or 'module:Class'.")
@click.option("--weights", type=click.Path(dir_okay=False), help="Weights file (single model; else as the CLI finds them).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True)
@click.option("--database", envvar="FORENSICS_SERVICE_DATABASE", help=_DB_HELP)
@click.option("--spool", envvar="FORENSICS_SERVICE_SPOOL", type=click.Path(file_okay=False),
              help="Folder for uploads (default: $FORENSICS_HOME/service/spool); shared by replicas.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=2048, show_default=True,
              help="Largest upload (MiB); FORENSICS_MAX_FILE_MB lowers it.")
@click.option("--spool-quota-mb", type=click.FloatRange(min=0, min_open=True), default=10240, show_default=True,
              help="All files in the spool together (MiB).")
@click.option("--queue-size", type=click.IntRange(min=1), default=100, show_default=True,
              help="Queued jobs at most; beyond it submissions get 429 with Retry-After.")
@click.option("--retention-hours", type=click.FloatRange(min=0, min_open=True), default=168, show_default=True,
              help="How long finished jobs and their results are kept.")
@click.option("--lease-s", type=click.FloatRange(min=0.5), default=30, show_default=True,
              help="A running job returns to the queue this long after its worker stops renewing it.")
@click.option("--max-attempts", type=click.IntRange(min=1), default=3, show_default=True,
              help="Claims of one job before it fails with worker_lost.")
@click.option("--housekeeping-s", type=click.FloatRange(min=0.1), default=5, show_default=True,
              help="Seconds between housekeeping passes (leases, retention, orphaned files).")
@click.option("--allow-root", "allow_roots", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="Folder whose files clients may submit by path instead of uploading (repeatable).")
@click.option("--webhook-host", "webhook_hosts", multiple=True,
              help="Host (or host:port) that callbacks may go to (repeatable); needs FORENSICS_WEBHOOK_SECRET.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Workers as local processes, or as Ray actors.")
@click.option("--address", help="Ray cluster address (default: start a local one).")
@click.pass_context
def serve(ctx, host, port, workers, models, weights, device, precision, database, spool, max_upload_mb, spool_quota_mb,
          queue_size, retention_hours, lease_s, max_attempts, housekeeping_s, allow_roots, webhook_hosts, backend,
          address) -> None:
    """Run the HTTP API: upload, poll, report. Jobs survive restarts; keys: `forensics serve keys`."""
    if ctx.invoked_subcommand:
        return
    _need_extra()
    from ..service.config import ServiceConfig
    from ..service.server import run_server

    if webhook_hosts and not os.environ.get("FORENSICS_WEBHOOK_SECRET"):
        raise click.UsageError("--webhook-host needs FORENSICS_WEBHOOK_SECRET (the key that signs callbacks)")
    mib = 1024 * 1024
    try:
        config = ServiceConfig(host=host, port=port, workers=workers, models=list(dict.fromkeys(models)), weights=weights,
                               device=device, precision=precision, database_url=database or "", spool_dir=spool or "",
                               max_upload_bytes=int(max_upload_mb * mib), spool_quota_bytes=int(spool_quota_mb * mib),
                               queue_size=queue_size, retention_s=retention_hours * 3600, lease_s=lease_s,
                               max_attempts=max_attempts, housekeeping_s=housekeeping_s, allow_roots=list(allow_roots),
                               webhook_hosts=list(webhook_hosts), backend=backend, ray_address=address)
        level = click.get_current_context().find_root().params.get("log_level", "warning")
        code = run_server(config, log_level=level)
    except ForensicsError as exc:
        _fail(exc)
    sys.exit(code)


@serve.group("keys")
def keys() -> None:
    """API keys: create (prints the key once), list, revoke."""


def _key_store(database: str | None):
    _need_extra()
    from ..service.config import default_database_url, normalise_database_url
    from ..service.keys import KeyStore
    from ..service.store import make_engine

    return KeyStore(make_engine(normalise_database_url(database or default_database_url())))


_database = click.option("--database", envvar="FORENSICS_SERVICE_DATABASE", help=_DB_HELP)


@keys.command("create")
@click.option("--name", required=True, help="Who the key is for (shown by `keys list`).")
@_database
def keys_create(name: str, database: str | None) -> None:
    """Create a key and print it alone on stdout (it is stored hashed: this is the only time it is shown)."""
    try:
        key, record = _key_store(database).create(name)
    except ForensicsError as exc:
        _fail(exc)
    click.echo(key)
    click.echo(f"created key {record['id']} ({record['prefix']}...) for {record['name']!r}", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@_database
def keys_list(as_json: bool, database: str | None) -> None:
    """List keys (never the keys themselves: ids, names, prefixes, dates)."""
    from ..service.schemas import iso

    rows = _key_store(database).list()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = f"revoked {iso(r['revoked_at'])}" if r["revoked_at"] else "active"
        click.echo(f"{r['id']}  {r['prefix']}...  {state:<8}  created {iso(r['created_at'])}  {r['name']}")


@keys.command("revoke")
@click.argument("ident")
@_database
def keys_revoke(ident: str, database: str | None) -> None:
    """Revoke a key by id, key prefix or name; it stops working at once."""
    try:
        revoked = _key_store(database).revoke(ident)
    except ForensicsError as exc:
        _fail(exc)
    for r in revoked:
        click.echo(f"revoked {r['id']} ({r['prefix']}...) {r['name']}")
