"""Where detector weights live, how they are found, and how they are downloaded.

Lookup order for a detector's weights (:func:`resolve_weights`):

1. an explicit path (``--weights PATH`` / ``weights=`` option);
2. the detector's environment variable (``WeightsSource.env_var``);
3. the cache: ``weights_dir() / source.filename``, where ``weights_dir()`` is
   ``$FORENSICS_HOME/weights`` or ``<user cache dir>/forensics/weights``.

:func:`download` fetches a file over HTTP(S) or from Google Drive into the cache via a
``.part`` file that later calls resume with an HTTP ``Range`` request; the size and
SHA-256 are checked (when known) before the file is atomically moved into place.

This package imports ``requests`` and ``tqdm`` only inside the functions that need them.
"""
from __future__ import annotations

from .cache import (
    WeightsSource,
    drive_file_id,
    forensics_home,
    resolve_weights,
    sha256_file,
    weights_dir,
)
from .fetch import DRIVE_DOWNLOAD_URL, download, pull

__all__ = [
    "DRIVE_DOWNLOAD_URL",
    "WeightsSource",
    "download",
    "drive_file_id",
    "forensics_home",
    "pull",
    "resolve_weights",
    "sha256_file",
    "weights_dir",
]
