"""``forensics models``, ``plugins`` and ``schema``: what is installed, read without importing detectors."""
from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the cards as JSON.")
def models(as_json: bool) -> None:
    """List the detectors (reads their cards; imports no detector code)."""
    from .. import list_models

    cards = list_models()
    if as_json:
        click.echo(json.dumps(cards, indent=2))
        return
    for card in cards:
        aliases = f" (aliases: {', '.join(card['aliases'])})" if card["aliases"] else ""
        click.echo(f"{card['id']:<14} {card['name']} {card['version']}{aliases}")
        click.echo(f"  modalities: {', '.join(card['modalities'])}; plugin: {card['plugin']}")
        click.echo(f"  {card['summary']}")


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
