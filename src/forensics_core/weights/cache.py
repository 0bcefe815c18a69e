"""Where detector weights live and how they are found: the cache, the lookup order, sources."""
from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from pathlib import Path
from typing import Literal

import pydantic

from forensics_core.errors import WeightsError

_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_DRIVE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{10,}$")
_DRIVE_HOSTS = {"drive.google.com", "docs.google.com", "drive.usercontent.google.com"}

# --------------------------------------------------------------------------------------
# Source description
# --------------------------------------------------------------------------------------


class WeightsSource(pydantic.BaseModel, frozen=True, extra="forbid"):
    """Where a detector's weights come from and what they must look like."""

    #: http(s) URL, a Google Drive URL, or ``gdrive://FILE_ID``; None: manual download only.
    url: str | None
    #: File name in the cache directory (a bare name, no directories).
    filename: str
    format: Literal["torch", "safetensors"]
    #: Expected SHA-256 (hex); checked after download and by :func:`pull`.
    sha256: str | None = None
    #: Expected size in bytes.
    size: int | None = None
    #: Environment variable that may hold a path to the weights, e.g. ``FORENSICS_LIPFD_WEIGHTS``.
    env_var: str | None = None
    #: Where a human can get the file by hand.
    homepage: str | None = None

    @pydantic.field_validator("url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        scheme = urllib.parse.urlsplit(v).scheme.lower()
        if scheme == "gdrive":
            if drive_file_id(v) is None:
                raise ValueError(f"gdrive URL without a valid file id: {v!r}")
        elif scheme not in ("http", "https"):
            raise ValueError(f"weights URL must be http(s):// or gdrive://, got {v!r}")
        return v

    @pydantic.field_validator("filename")
    @classmethod
    def _check_filename(cls, v: str) -> str:
        if not v or v in (".", "..") or "/" in v or "\\" in v or "\x00" in v or v.endswith(".part"):
            raise ValueError(f"filename must be a bare file name, got {v!r}")
        return v

    @pydantic.field_validator("sha256")
    @classmethod
    def _check_sha256(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _SHA256_RE.match(v):
            raise ValueError(f"sha256 must be 64 hex digits, got {v!r}")
        return v.lower()

    @pydantic.field_validator("size")
    @classmethod
    def _check_size(cls, v: int | None) -> int | None:
        if v is not None and v <= 0:
            raise ValueError("size must be positive")
        return v

    @pydantic.field_validator("env_var")
    @classmethod
    def _check_env_var(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", v):
            raise ValueError(f"not a valid environment variable name: {v!r}")
        return v


# --------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------


def forensics_home() -> Path:
    """``$FORENSICS_HOME`` if set, else the per-user cache directory. Creates nothing."""
    env = os.environ.get("FORENSICS_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("forensics"))


def weights_dir() -> Path:
    """The directory that cached weights live in. Creates nothing."""
    return forensics_home() / "weights"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def drive_file_id(url: str) -> str | None:
    """The Google Drive file id in ``url``, or None when it is not a Drive URL.

    Understands ``gdrive://ID``, ``https://drive.google.com/file/d/ID/view``,
    ``.../open?id=ID``, ``.../uc?id=ID`` and ``drive.usercontent.google.com/download?id=ID``.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "gdrive":
        fid = (parts.netloc + parts.path).strip("/")
        return fid if _DRIVE_ID_RE.match(fid) else None
    if scheme not in ("http", "https") or (parts.hostname or "").lower() not in _DRIVE_HOSTS:
        return None
    m = re.search(r"/file/d/([A-Za-z0-9_-]+)", parts.path)
    if m:
        return m.group(1)
    ids = urllib.parse.parse_qs(parts.query).get("id")
    if ids and _DRIVE_ID_RE.match(ids[0]):
        return ids[0]
    return None


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _manual_hint(source: WeightsSource, cache_path: Path, detector_id: str | None = None) -> str:
    """How to get the weights by hand: where from, and the three places to put them."""
    where = source.homepage or source.url
    get = f"download {source.filename} from {where}" if where else f"obtain {source.filename}"
    places = ["pass `--weights PATH`"]
    if source.env_var:
        places.append(f"set {source.env_var}=PATH")
    places.append(f"place it at {cache_path}")
    text = f"{get} and " + (", ".join(places[:-1]) + f", or {places[-1]}")
    if detector_id and source.url:
        text = f"run `forensics pull {detector_id}`, or " + text
    return text


# --------------------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------------------


def resolve_weights(
    detector_id: str,
    source: WeightsSource | None,
    explicit: str | os.PathLike | None = None,
) -> Path:
    """Find a detector's weights: explicit path, then ``source.env_var``, then the cache.

    A given explicit path or environment variable that does not name a file is an error
    (it never falls through to the cache). When nothing is found, the :class:`WeightsError`
    says exactly how to get the weights.
    """
    if explicit is not None and os.fspath(explicit) != "":
        path = Path(os.fspath(explicit)).expanduser()
        if not path.is_file():
            what = "is a directory, not a file" if path.is_dir() else "does not exist"
            raise WeightsError(
                f"weights for detector {detector_id!r}: {path} {what}",
                hint=(_manual_hint(source, weights_dir() / source.filename, detector_id) if source
                      else "pass --weights with the path of an existing weights file"),
            )
        return path

    if source is None:
        raise WeightsError(
            f"detector {detector_id!r} declares no weights source and no weights path was given",
            hint="pass `--weights PATH` with the path of a weights file",
        )

    cache_path = weights_dir() / source.filename
    if source.env_var:
        value = os.environ.get(source.env_var)
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                what = "is a directory, not a file" if path.is_dir() else "does not exist"
                raise WeightsError(
                    f"weights for detector {detector_id!r}: {source.env_var}={value} {what}",
                    hint=f"point {source.env_var} at an existing file, or unset it to use the cache; "
                    + _manual_hint(source, cache_path, detector_id),
                )
            return path

    if cache_path.is_file():
        if source.size is not None and cache_path.stat().st_size != source.size:
            raise WeightsError(
                f"weights for detector {detector_id!r} at {cache_path} have {cache_path.stat().st_size} bytes, "
                f"expected {source.size} (truncated or a different file)",
                hint=(f"run `forensics pull {detector_id} --force` to download them again, or "
                      if source.url else "")
                + _manual_hint(source, cache_path),
            )
        return cache_path

    looked = [str(cache_path)]
    if source.env_var:
        looked.insert(0, f"${source.env_var} (not set)")
    if source.url:
        size = f" ({_human_size(source.size)})" if source.size else ""
        message = (
            f"weights for detector {detector_id!r} not found (looked at: {', '.join(looked)}); "
            f"run `forensics pull {detector_id}` to download {source.filename}{size} to {cache_path}"
        )
    else:
        message = (
            f"weights for detector {detector_id!r} not found (looked at: {', '.join(looked)}); "
            f"they cannot be downloaded automatically: `forensics pull {detector_id}` is not available, "
            f"get {source.filename} by hand and place it at {cache_path}"
        )
    raise WeightsError(message, hint=_manual_hint(source, cache_path, detector_id))


# --------------------------------------------------------------------------------------
# Identity and provenance
# --------------------------------------------------------------------------------------

#: Suffix of the download record kept beside a cached file (``lipfd_ckpt.pth.json``).
RECORD_SUFFIX = ".json"
_HASHES: dict[tuple, str] = {}  # (realpath, size, mtime_ns, inode) -> sha256, per process


def record_path(path: str | os.PathLike) -> Path:
    """Where the download record of ``path`` lives: beside it, ``NAME.json``."""
    p = Path(path)
    return p.with_name(p.name + RECORD_SUFFIX)


def read_record(path: str | os.PathLike) -> dict | None:
    """The download record of ``path`` if there is one and it still describes the file.

    A record whose size or mtime no longer matches the file (replaced, edited,
    truncated) is ignored: its sha256 is no longer the file's.
    """
    import json

    try:
        record = json.loads(record_path(path).read_text(encoding="utf-8"))
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        return None
    if record.get("size") != st.st_size or record.get("mtime_ns") != st.st_mtime_ns:
        return None
    return record


def write_record(path: str | os.PathLike, sha256: str, **info: object) -> Path:
    """Record ``path``'s sha256 (with its size and mtime, and ``info``) beside it, atomically."""
    import datetime
    import json

    p = Path(path)
    st = p.stat()
    record = {"file": p.name, "sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
              "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **info}
    dest = record_path(p)
    tmp = dest.with_name(dest.name + ".part")
    try:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def weights_identity(path: str | os.PathLike) -> dict:
    """What identifies a weights file cheaply (``stat`` only): resolved path, size, mtime."""
    real = os.path.realpath(os.fspath(path))
    st = os.stat(real)
    return {"path": real, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def weights_sha256(path: str | os.PathLike) -> str:
    """The file's SHA-256, hashed once per file version on this machine.

    From the download record beside it when that still matches; else from a hash
    record in ``weights_dir()/hashes/`` keyed by the file's resolved path, size, mtime and
    inode (written after hashing; a file that changes gets a new key); else hashed now
    (about 1.3 s for LipFD's 1.8 GB on one core) and recorded there. Nothing is ever
    written beside the weights file itself.
    """
    import json

    record = read_record(path)
    if record is not None:
        return record["sha256"]
    real = os.path.realpath(os.fspath(path))
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns, st.st_ino)
    if key in _HASHES:
        return _HASHES[key]
    name = hashlib.sha256("\0".join(map(str, key)).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    stored = weights_dir() / "hashes" / f"{name}.json"
    try:
        known = json.loads(stored.read_text(encoding="utf-8"))
        if known.get("key") == list(key) and _SHA256_RE.match(known.get("sha256", "")):
            _HASHES[key] = known["sha256"]
            return known["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    digest = sha256_file(real, chunk=1 << 22)
    _HASHES[key] = digest
    tmp = stored.with_name(f"{stored.name}.{os.getpid()}.part")
    try:
        stored.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"key": list(key), "sha256": digest}), encoding="utf-8")
        os.replace(tmp, stored)
    except (OSError, UnicodeEncodeError):
        pass  # a read-only cache: hashed again next time
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass
    return digest


def keep_torch_caches_out_of_tmp() -> None:
    """Point torch's compile cache at FORENSICS_HOME unless the user chose a place.

    Importing torchvision imports ``torch._dynamo``, which creates an empty
    ``$TMPDIR/torchinductor_<user>`` folder on every run. We compile nothing, but the
    folder is made at import time; so ``TORCHINDUCTOR_CACHE_DIR`` is set to
    ``FORENSICS_HOME/torchinductor`` (made here) before torch is imported. If that cannot
    be made, torch's default is left alone rather than breaking the import.
    """
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return
    target = forensics_home() / "torchinductor"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.fspath(target)
