"""``forensics report``: a self-contained HTML report from results already computed."""
from __future__ import annotations

import sys

import click

from ..errors import EXIT_OK, ForensicsError
from .common import _fail


def progress_callback(quiet: bool, total_hint: str = "file"):
    """A tqdm bar on stderr for reports of several files; None when quiet or not a terminal."""
    if quiet or not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if total < 2:
            return
        if bar is None:
            bar = tqdm(total=total, unit=total_hint, desc="report", file=sys.stderr)
        bar.update(done - bar.n)

    return update, lambda: bar.close() if bar is not None else None


@click.command("report")
@click.argument("results", type=click.Path(dir_okay=False, allow_dash=True), metavar="RESULTS.jsonl|RESULT.json|-")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--title", help="The report's title (default: the file name, or the number of files).")
@click.option("--no-images", is_flag=True, help="Leave out the window images (no media decoding).")
@click.option("--max-windows", type=click.IntRange(min=0), default=None,
              help="Windows per detector and file shown with images (default 24: the highest scores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def report(results: str, output: str, title: str | None, no_images: bool, max_windows: int | None, quiet: bool) -> None:
    """Write one self-contained HTML file for results from `analyze --json` or `scan`.

    The window images are recomputed from the media files, which must still be where the
    results say (the report says so, per file, where they are not).
    """
    from ..report import MAX_WINDOW_IMAGES, read_documents, write_html

    update, close = progress_callback(quiet)
    try:
        docs = read_documents(results)
        path = write_html(docs, output, title=title, images=not no_images,
                          max_windows=MAX_WINDOW_IMAGES if max_windows is None else max_windows, progress=update)
    except ForensicsError as exc:
        _fail(exc)
    finally:
        close()
    click.echo(f"report: {path.resolve()} ({len(docs)} file{'s' if len(docs) != 1 else ''})")
    sys.exit(EXIT_OK)
