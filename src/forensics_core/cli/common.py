"""Helpers every command shares: errors to stderr with their exit code, --option parsing, output."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import (
    EXIT_MEDIA,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_OTHER,
    EXIT_USAGE,
    ForensicsError,
)


def _fail(exc: ForensicsError) -> None:
    click.echo(f"error [{exc.code}]: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)
    sys.exit(exc.exit_code)


def parse_option_pairs(pairs: tuple[str, ...], model_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``KEY=VALUE`` for every model, or ``MODEL.KEY=VALUE`` for one; values parsed as JSON when they parse."""
    out: dict[str, dict[str, Any]] = {m: {} for m in model_ids}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        scope, dot, name = key.rpartition(".")
        targets = [m for m in model_ids if m.upper() == scope.upper()] if dot else model_ids
        if dot and not targets:
            raise click.BadParameter(f"{pair!r} names model {scope!r}, which is not among --model {', '.join(model_ids)}", param_hint="--option")
        for m in targets:
            out[m][name if dot else key] = value
    return out


#: --output values that mean the standard streams (never renamed over, never replaced)
_STDOUT_NAMES = {"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"}
_STDERR_NAMES = {"/dev/stderr", "/dev/fd/2", "/proc/self/fd/2"}


class OutputTarget:
    """Where ``--output`` goes, checked before any model is loaded or file analysed.

    * ``None``, ``-`` or ``/dev/stdout``: standard output (``/dev/stderr``: standard error);
    * a device, FIFO or anything under ``/dev`` or ``/proc``: written directly, at the end;
    * a regular path: a temporary file is created beside it *now* (so a read-only or
      missing folder fails at once, not after the analysis), written at the end and
      renamed over the destination (readers never see half a file); it is removed if the
      command fails. Its mode follows the umask, as for any file a program writes.
    """

    def __init__(self, output: str | None, param: str = "--output"):
        self.output, self.param, self.stream, self.direct, self.tmp = output, param, None, None, None
        if output is None or output in _STDOUT_NAMES:
            self.stream = "stdout"
        elif output in _STDERR_NAMES:
            self.stream = "stderr"
        else:
            self._check(output)

    def _check(self, output: str) -> None:
        import stat

        path = Path(output)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise click.BadParameter(f"cannot use {output!r}: {exc.strerror or exc}", param_hint=self.param) from None
        special = os.path.abspath(output).startswith(("/dev/", "/proc/")) or (st is not None and not stat.S_ISREG(st.st_mode))
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise click.BadParameter(f"{output!r} is a directory", param_hint=self.param)
        if special:
            if st is None or not os.access(path, os.W_OK):
                raise click.BadParameter(f"cannot write to {output!r}", param_hint=self.param)
            self.direct = path
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666))
        except OSError as exc:
            where = "its folder does not exist" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
            raise click.BadParameter(f"cannot write {output!r}: {where}", param_hint=self.param) from None
        self.tmp, self.dest = tmp, path

    def write(self, text: str) -> None:
        """Write the whole output; an OSError (disk full ...) becomes a clean error (exit 1)."""
        data = text + "\n"
        try:
            if self.stream:
                click.echo(text, err=self.stream == "stderr")
            elif self.direct is not None:
                with open(self.direct, "w", encoding="utf-8") as fh:
                    fh.write(data)
            else:
                with open(self.tmp, "w", encoding="utf-8") as fh:
                    fh.write(data)
                os.replace(self.tmp, self.dest)
                self.tmp = None
        except OSError as exc:
            self.discard()
            click.echo(f"error: cannot write {self.output}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_OTHER)

    def discard(self) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


def _emit(text: str, output: str | None) -> None:
    """Write ``text`` to ``output`` (see :class:`OutputTarget`), else stdout."""
    target = OutputTarget(output)
    target.write(text)


def _format_row(row: dict[str, Any]) -> str:
    """One row for people: the verdict, the abstention or the error (once, with its hint), then every warning."""
    if row["status"] == "ok":
        text = f"{row['detector_id']:<12} {row['prediction']:<5} score={row['score']:.4f} confidence={row['confidence']:.4f} ({row['processing_time']:.1f} s)"
    elif row["status"] == "abstained":
        code = f" [{row['abstain_code']}]" if row.get("abstain_code") else ""
        text = f"{row['detector_id']:<12} abstained{code}: {row['abstain_reason']}"
    else:
        err = row["error"]
        text = f"{row['detector_id']:<12} error [{err['code']}]: {err['message']}" + (f"\n{'':<13}hint: {err['hint']}" if err.get("hint") else "")
    for warning in row.get("warnings") or []:
        text += f"\n{'':<13}warning: {warning}"
    return text


def exit_code_for(rows: list[dict[str, Any]]) -> int:
    """4 if any model/weights error, else 3 if any media error, else 2 for invalid options or settings, else 1."""
    from ..errors import MEDIA_ERROR_CODES

    codes = [r["error"]["code"] for r in rows if r["status"] == "error"]
    if any(c in {"weights_error", "unknown_detector", "not_loaded", "face_model_unavailable"} for c in codes):
        return EXIT_MODEL
    if any(c in MEDIA_ERROR_CODES for c in codes):
        return EXIT_MEDIA
    if "invalid_options" in codes:
        return EXIT_USAGE
    if codes:
        return EXIT_OTHER
    return EXIT_OK
