"""``forensics pull`` and ``convert``: getting weights into the cache and into safetensors."""
from __future__ import annotations

import json

import click

from ..errors import ForensicsError
from .common import _fail


@click.command()
@click.argument("detector_id")
@click.option("--force", is_flag=True, help="Download again even if the cached file is valid.")
@click.option("--deadline", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Give up when the whole download takes longer (default: 4 hours).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def pull(detector_id: str, force: bool, deadline: float | None, quiet: bool) -> None:
    """Download a detector's weights into the cache (FORENSICS_HOME), checked before they enter it.

    The download must load as the detector's checkpoint; its SHA-256 is recorded beside it
    (shown by `forensics models` and in every result).
    """
    from ..plugins import get_host
    from ..weights import DEFAULT_DEADLINE_S, read_record
    from ..weights import pull as pull_weights
    from ..weights.cache import keep_torch_caches_out_of_tmp

    try:
        entry = get_host().registry.get(detector_id)
        card = entry.card
        if card.weights is None:
            raise ForensicsError(f"{card.id} declares no weights to download")
        keep_torch_caches_out_of_tmp()  # the detector's check builds its model: torch is imported
        validate = getattr(entry.detector_class(), "check_weights", None)
        path = pull_weights(card.id, card.weights, force=force, progress=False if quiet else None, validate=validate,
                            deadline=deadline or DEFAULT_DEADLINE_S)
    except ForensicsError as exc:
        _fail(exc)
    record = read_record(path)
    if record:
        click.echo(f"sha256 {record['sha256']}", err=True)
    click.echo(str(path))


@click.command()
@click.argument("detector_id")
@click.argument("checkpoint", type=click.Path(dir_okay=False, readable=False))
@click.argument("output", type=click.Path(dir_okay=False, writable=False, readable=False))
def convert(detector_id: str, checkpoint: str, output: str) -> None:
    """Convert a checkpoint to safetensors holding only what inference needs (OUTPUT must end in .safetensors)."""
    from pathlib import Path

    from ..plugins import get_host

    if Path(output).suffix != ".safetensors":
        raise click.BadParameter(f"{output!r}: the output is safetensors and must be named *.safetensors "
                                 f"(e.g. {Path(output).with_suffix('.safetensors')})", param_hint="OUTPUT")
    from ..weights.cache import keep_torch_caches_out_of_tmp

    keep_torch_caches_out_of_tmp()  # converters build the model: torch is imported
    try:
        entry = get_host().registry.get(detector_id)
        cls = entry.detector_class()
        if not hasattr(cls, "convert_weights"):
            raise ForensicsError(f"{entry.card.id} has no weights converter")
        info = cls.convert_weights(checkpoint, output)
    except ForensicsError as exc:
        _fail(exc)
    click.echo(json.dumps({"output": output, **info}))
