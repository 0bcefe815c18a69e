"""``forensics pull`` and ``convert``: getting weights into the cache and into safetensors."""
from __future__ import annotations

import json

import click

from ..errors import ForensicsError
from .common import _fail


@click.command()
@click.argument("detector_id")
@click.option("--force", is_flag=True, help="Download again even if the cached file is valid.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def pull(detector_id: str, force: bool, quiet: bool) -> None:
    """Download a detector's weights into the cache (FORENSICS_HOME)."""
    from ..plugins import get_host
    from ..weights import pull as pull_weights

    try:
        card = get_host().registry.get(detector_id).card
        if card.weights is None:
            raise ForensicsError(f"{card.id} declares no weights to download")
        path = pull_weights(card.id, card.weights, force=force, progress=False if quiet else None)
    except ForensicsError as exc:
        _fail(exc)
    click.echo(str(path))


@click.command()
@click.argument("detector_id")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
def convert(detector_id: str, checkpoint: str, output: str) -> None:
    """Convert a checkpoint to safetensors holding only what inference needs."""
    from ..plugins import get_host

    try:
        entry = get_host().registry.get(detector_id)
        cls = entry.detector_class()
        if not hasattr(cls, "convert_weights"):
            raise ForensicsError(f"{entry.card.id} has no weights converter")
        info = cls.convert_weights(checkpoint, output)
    except ForensicsError as exc:
        _fail(exc)
    click.echo(json.dumps({"output": output, **info}))
