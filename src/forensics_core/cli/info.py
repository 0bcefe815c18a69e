"""``forensics models``, ``plugins`` and ``schema``: what is installed, read without importing detectors."""
from __future__ import annotations

import json
from typing import Any

import click


def cached_weights(card: dict[str, Any]) -> dict[str, Any] | None:
    """Where a card's weights would be in the cache and, once pulled, their recorded sha256 (no hashing here)."""
    if not card.get("weights"):
        return None
    from ..weights import read_record, weights_dir

    path = weights_dir() / card["weights"]["filename"]
    record = read_record(path) if path.is_file() else None
    return {"path": str(path), "present": path.is_file(), "sha256": record["sha256"] if record else None,
            "recorded_at": record.get("recorded_at") if record else None}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the cards as JSON.")
def models(as_json: bool) -> None:
    """List the detectors (reads their cards; imports no detector code)."""
    from .. import list_models

    cards = list_models()
    for card in cards:
        card["weights_cache"] = cached_weights(card)
    if as_json:
        click.echo(json.dumps(cards, indent=2))
        return
    for card in cards:
        aliases = f" (aliases: {', '.join(card['aliases'])})" if card["aliases"] else ""
        click.echo(f"{card['id']:<14} {card['name']} {card['version']}{aliases}")
        click.echo(f"  modalities: {', '.join(card['modalities'])}; plugin: {card['plugin']}")
        click.echo(f"  {card['summary']}")
        cache = card["weights_cache"]
        if cache and cache["present"]:
            sha = f"sha256 {cache['sha256']}" if cache["sha256"] else "no download record (run `forensics pull` to check it)"
            click.echo(f"  weights: {cache['path']} ({sha})")
        elif cache:
            click.echo(f"  weights: not in the cache (`forensics pull {card['id']}`, or --weights PATH)")


@click.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """List discovered plugins and whether they loaded."""
    from .. import get_plugins

    rows = get_plugins()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:<20} {row['status']:<9} {row['source']}")
        if row["detectors"]:
            click.echo(f"  detectors: {', '.join(row['detectors'])}")
        if row["error"]:
            click.echo(f"  error: {row['error']}")


@click.command()
def schema() -> None:
    """Print the JSON Schema of a detection result."""
    from ..results import result_json_schema

    click.echo(json.dumps(result_json_schema(), indent=2))
