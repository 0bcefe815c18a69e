"""Where detector weights live, how they are found, and how they are downloaded.

Lookup order for a detector's weights (:func:`resolve_weights`):

1. an explicit path (``--weights PATH`` / ``weights=`` option);
2. the detector's environment variable (``WeightsSource.env_var``);
3. the cache: ``weights_dir() / source.filename``, where ``weights_dir()`` is
   ``$FORENSICS_HOME/weights`` or ``<user cache dir>/forensics/weights``.

:func:`download` fetches a file over HTTP(S) or from Google Drive into the cache via a
``.part`` file, checked before it is atomically moved into place (status, content type,
no content encoding, length caps, a deadline, resume only with ``If-Range``, size and
SHA-256 when known, the detector's own load check); see :mod:`.fetch`. The SHA-256 is
then recorded beside the file (``NAME.json``): :func:`weights_sha256` reads it back.

This package imports ``requests`` and ``tqdm`` only inside the functions that need them.
"""
from __future__ import annotations

from .cache import (
    WeightsSource,
    drive_file_id,
    forensics_home,
    read_record,
    record_path,
    resolve_weights,
    sha256_file,
    weights_dir,
    weights_identity,
    weights_sha256,
    write_record,
)
from .fetch import DEFAULT_DEADLINE_S, DRIVE_DOWNLOAD_URL, MAX_DOWNLOAD_BYTES, cached_file_ok, download, pull

__all__ = [
    "DEFAULT_DEADLINE_S",
    "DRIVE_DOWNLOAD_URL",
    "MAX_DOWNLOAD_BYTES",
    "WeightsSource",
    "cached_file_ok",
    "download",
    "drive_file_id",
    "forensics_home",
    "pull",
    "read_record",
    "record_path",
    "resolve_weights",
    "sha256_file",
    "weights_dir",
    "weights_identity",
    "weights_sha256",
    "write_record",
]
