"""The Ray backend of ``forensics scan``: the same per-file function in a Ray ``ActorPool``.

Each actor loads the models once; the driver alone writes the JSONL. Ray is an
optional extra (``pip install 'forensics[ray]'``), imported only here.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..detector import Detector
from ..errors import ForensicsError, InvalidOptionsError
from .worker import ModelSpec, _Job, _process, load_detectors


class _RayScanWorker:
    """Ray actor body: loads the models once, then turns paths into lines."""

    def __init__(self, specs: list[str], job: _Job):
        self.job, self.error = job, None
        try:
            self.detectors = load_detectors(specs, job.load_kwargs, job.model_load_kwargs)
        except ForensicsError as exc:  # returned as data: our exceptions do not all pickle
            self.error = {**exc.to_dict(), "exit_code": exc.exit_code}

    def ready(self) -> dict | None:
        return self.error

    def process(self, path: str, key: dict | None) -> dict[str, Any]:
        return _process(self.detectors, path, key, self.job)


def ray_specs(models: Sequence[ModelSpec]) -> list[str]:
    """Actors are other processes: they get what they can import (ids, ``module:Class``), never objects."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise InvalidOptionsError("the ray backend needs Ray, which is not installed",
                                  hint="pip install 'forensics[ray]'") from None
    if any(isinstance(m, Detector) for m in models):
        raise InvalidOptionsError("backend='ray' cannot ship a loaded detector", hint="pass its id, its class or 'module:Class'")
    return [m if isinstance(m, str) else f"{m.__module__}:{m.__qualname__}" for m in models]


def _rebuild_error(info: dict[str, Any]) -> ForensicsError:
    from .. import errors

    cls = getattr(errors, info["type"], None)
    cls = cls if isinstance(cls, type) and issubclass(cls, ForensicsError) else ForensicsError
    err = cls.__new__(cls)  # not cls(...): subclasses' __init__ signatures differ
    Exception.__init__(err, info["message"])
    err.message, err.hint, err.code, err.exit_code = info["message"], info.get("hint"), info["code"], info["exit_code"]
    return err


def run_ray(specs: list[str], todo, job: _Job, workers: int, emit, address: str | None, actor_options) -> None:
    """An ``ActorPool``: each actor loads the models once; ``map`` yields lines in input order.

    Ray hides GPUs from actors that reserve none, so unless ``actor_options`` says otherwise
    (or the device is ``cpu``) the actors share the cluster's GPUs.
    """
    import ray
    from ray.util import ActorPool

    own = not ray.is_initialized()
    if own:
        ray.init(address=address or None, include_dashboard=False)
    actors = []
    try:
        resources = {"num_cpus": 1, **(actor_options or {})}
        gpus = ray.cluster_resources().get("GPU", 0)
        if "num_gpus" not in resources and gpus and job.load_kwargs.get("device", "auto") != "cpu":
            resources["num_gpus"] = min(1.0, gpus / workers)
        actor_cls = ray.remote(**resources)(_RayScanWorker)
        actors = [actor_cls.remote(specs, job) for _ in range(workers)]
        for err in ray.get([a.ready.remote() for a in actors]):
            if err:
                raise _rebuild_error(err)
        for line in ActorPool(actors).map(lambda a, item: a.process.remote(*item), todo):
            emit(line)
    finally:
        for a in actors:
            ray.kill(a)
        if own:
            ray.shutdown()
