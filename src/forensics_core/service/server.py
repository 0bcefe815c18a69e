"""``forensics serve``: check the set-up, start the workers and housekeeping, run uvicorn, stop it all.

Problems an operator can fix are found before the port is bound: an unknown
detector (exit 4), missing weights (exit 4, with the hint that says how to get
them), an unreachable database (exit 1). A worker that cannot load its models
later stops the service with the same exit code rather than leaving it up and
never ready.
"""
from __future__ import annotations

import sys
import threading

from ..errors import EXIT_OK, ForensicsError
from ..logs import get_logger
from .config import ServiceConfig

log = get_logger("forensics.service")


def check_weights(served, explicit: str | None) -> None:
    """Every served detector with a weights source (or the --weights file) must be found now (WeightsError)."""
    from ..weights import resolve_weights

    for cid, klass in served.classes.items():
        if klass.card.weights is not None or explicit:
            resolve_weights(cid, klass.card.weights, explicit)


def build(config: ServiceConfig):
    """The pieces of one replica: store, keys, spool, served detectors, app."""
    from .app import create_app
    from .jobs import JobStore
    from .keys import KeyStore
    from .spool import Spool
    from .store import make_engine
    from .submission import Served

    served = Served.from_specs(config.models)
    check_weights(served, config.weights)
    engine = make_engine(config.database_url)
    store, keys, spool = JobStore(engine), KeyStore(engine), Spool(config.spool_dir, config.spool_quota_bytes)
    return engine, store, spool, create_app(config, store, keys, spool, served)


def run_server(config: ServiceConfig, log_level: str = "warning") -> int:
    import uvicorn

    from .housekeeping import Housekeeper
    from .workers import LocalWorkers, RayWorkers

    engine, store, spool, app = build(config)
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level,
                                           access_log=log_level == "debug", server_header=False,
                                           timeout_graceful_shutdown=10, lifespan="off"))
    exit_code = [EXIT_OK]
    fatal_lock = threading.Lock()

    def on_fatal(code: int) -> None:
        with fatal_lock:
            exit_code[0] = code
        server.should_exit = True

    keeper = Housekeeper(config, store, spool)
    workers = None
    if config.workers > 0:
        workers = (RayWorkers if config.backend == "ray" else LocalWorkers)(config, on_fatal)
    try:
        keeper.run_once()  # jobs whose lease ran out while the service was down resume now
        keeper.start()
        if workers is not None:
            workers.start()
        print(f"forensics serve: http://{config.host}:{config.port}/ ({config.workers} {config.backend} workers, "
              f"models {', '.join(config.models)})", file=sys.stderr, flush=True)
        server.run()
        if not server.started and exit_code[0] == EXIT_OK:
            exit_code[0] = 1  # the port could not be bound (uvicorn logged why)
    except ForensicsError as exc:
        print(f"error [{exc.code}]: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        exit_code[0] = exc.exit_code
    finally:
        if workers is not None:
            workers.stop()
        keeper.close()
        engine.dispose()
    return exit_code[0]
