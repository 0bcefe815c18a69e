"""The ``forensics`` command line. Results go to stdout, logs and progress to stderr.

Exit codes: 0 all ok, 1 anything else, 2 usage, 3 a media error, 4 a weights or model error.
Nothing heavy is imported at module level: ``forensics --help`` and ``forensics models`` stay fast.
"""
from __future__ import annotations

import click

from ..errors import EXIT_USAGE
from .analyze import analyze
from .batch import evaluate_command, scan_command
from .common import exit_code_for, parse_option_pairs
from .info import models, plugins, schema
from .report import report
from .serve import serve
from .weights import convert, pull


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="forensics")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning", show_default=True, envvar="FORENSICS_LOG_LEVEL")
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console", show_default=True, envvar="FORENSICS_LOG_FORMAT")
def main(log_level: str, log_format: str) -> None:
    """Run media-forensics detectors side by side."""
    from ..logs import configure

    configure(log_level, log_format)



for _command in (models, plugins, schema, pull, convert, analyze, report):
    main.add_command(_command)
main.add_command(scan_command, "scan")
main.add_command(evaluate_command, "evaluate")
main.add_command(serve, "serve")

__all__ = ["main", "EXIT_USAGE", "exit_code_for", "parse_option_pairs"]
