"""Running the bundled ffmpeg safely: argument lists, ``file:`` inputs, no shell, timeouts."""
from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Sequence

from ..errors import MediaProcessingError


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with ``imageio-ffmpeg`` (or ``IMAGEIO_FFMPEG_EXE``).

    Cached: the lookup stats several paths and is done once per process.
    """
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_input(path: str | os.PathLike[str]) -> str:
    """The ffmpeg input argument for ``path``: ``"file:" + absolute path``.

    Why: ffmpeg treats an argument starting with ``-`` as an option, and one containing
    ``:`` before the first ``/`` as a protocol (``concat:``, ``http:``, ``pipe:``...).
    An absolute path always starts with ``/``, and the explicit ``file:`` protocol makes
    ffmpeg open exactly that file with no further interpretation (no image-sequence
    patterns, no protocol guessing). It is passed as one argv element, so shell
    metacharacters, quotes and newlines are inert.
    """
    text = os.fsdecode(path) if isinstance(path, (bytes, bytearray)) else os.fspath(path)
    return "file:" + os.path.abspath(text)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FFREPORT", None)  # would write ffmpeg-*.log into the working directory
    env.pop("AV_LOG_FORCE_COLOR", None)
    env["AV_LOG_FORCE_NOCOLOR"] = "1"
    return env


def _last_line(data: bytes) -> str:
    for line in reversed(data.decode("utf-8", errors="replace").splitlines()):
        if line.strip():
            line = line.strip()
            return line if len(line) <= 500 else line[:497] + "..."
    return "(no output)"


def run_ffmpeg(
    args: Sequence[str],
    *,
    path: str | os.PathLike[str] | None,
    timeout: float,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``ffmpeg -nostdin -hide_banner *args`` safely and return its output.

    The command is an argument list (never ``shell=True``), stdin is ``/dev/null``
    (ffmpeg would otherwise read keystrokes from a terminal, or hang on a closed one),
    stdout and stderr are captured in memory, and the environment is cleaned so ffmpeg
    writes no report file. ``path`` is only used to label errors.

    Raises :class:`MediaProcessingError`:

    * ``decode_timeout`` when the process runs past ``timeout`` seconds (it is killed
      and reaped first; ``subprocess.run`` does that);
    * ``decode_failed`` when ``check`` is true and ffmpeg exits non-zero; the message
      ends with ffmpeg's last stderr line, which is where it states the reason.
    """
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", *(os.fspath(a) for a in args)]
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            env=_child_env(),
            check=False,
            shell=False,
        )
    except subprocess.TimeoutExpired as exc:
        where = f" on {os.fspath(path)}" if path is not None else ""
        raise MediaProcessingError("decode_timeout", f"ffmpeg ran past its {timeout:g} s limit{where}", path=path) from exc
    if check and proc.returncode != 0:
        where = f" on {os.fspath(path)}" if path is not None else ""
        raise MediaProcessingError(
            "decode_failed",
            f"ffmpeg failed{where} (exit {proc.returncode}): {_last_line(proc.stderr)}",
            path=path,
        )
    return proc


class FFmpegStream:
    """``ffmpeg ... pipe:1`` read a chunk at a time: :func:`run_ffmpeg`'s safety, bounded memory.

    Why: a 4-hour track is 460 MB of 16 kHz PCM; reading it whole (``run_ffmpeg``
    keeps stdout in memory) makes memory grow with the duration. Here the caller
    consumes up to ``read_size`` bytes at a time and may stop early (``close``, or leave
    the ``with`` block), which kills and reaps ffmpeg: e.g. as soon as the decoded audio
    passes a duration cap.

    Same rules as :func:`run_ffmpeg`: an argument list (no shell), ``-nostdin``, stdin
    from ``/dev/null``, the cleaned environment. stderr is drained by a thread that
    keeps only its last 64 KiB (a damaged file can make ffmpeg print without end).

    ``timeout`` bounds the time spent *waiting for ffmpeg's output*, summed over the
    reads: a decoder that spins or stalls is killed and iteration raises
    ``decode_timeout``, while the consumer's own work on a long stream (resampling, a
    spectrogram) does not count against ffmpeg. A non-zero exit raises ``decode_failed``
    with ffmpeg's last stderr line.
    """

    def __init__(self, args: Sequence[str], *, path: str | os.PathLike[str] | None, timeout: float, read_size: int = 1 << 16):
        import threading

        self.path, self.timeout, self.read_size = path, timeout, read_size
        self.waited = 0.0  # seconds spent waiting for output so far
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", *(os.fspath(a) for a in args)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env=_child_env(), shell=False)
        self._stderr = bytearray()
        self._closed = False
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()

    def _drain_stderr(self) -> None:
        pipe = self._proc.stderr
        assert pipe is not None
        for data in iter(lambda: pipe.read1(4096), b""):
            self._stderr += data
            if len(self._stderr) > 1 << 16:
                del self._stderr[: len(self._stderr) - (1 << 16)]

    def _where(self) -> str:
        return f" on {os.fspath(self.path)}" if self.path is not None else ""

    def __iter__(self):
        import select
        import time

        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while True:
            t0 = time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, self.timeout - self.waited))
            self.waited += time.monotonic() - t0
            if not ready:
                self.close()
                raise MediaProcessingError("decode_timeout", f"ffmpeg ran past its {self.timeout:g} s limit{self._where()}", path=self.path)
            chunk = os.read(fd, self.read_size)
            if not chunk:
                break
            yield chunk
        code = self._proc.wait()
        self._drain.join(timeout=5)
        if code != 0:
            raise MediaProcessingError(
                "decode_failed", f"ffmpeg failed{self._where()} (exit {code}): {_last_line(bytes(self._stderr))}", path=self.path
            )

    def close(self) -> None:
        """Stop reading: kill ffmpeg if it still runs, reap it, close the pipes. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._drain.join(timeout=5)  # ffmpeg is gone: its stderr reaches EOF
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> FFmpegStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
