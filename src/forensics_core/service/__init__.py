"""``forensics serve``: the detectors behind an HTTP API, with a job queue that survives restarts.

Rooms, following the data of one request:

* ``config``: every setting, from the command line and ``FORENSICS_*`` variables.
* ``app``: the FastAPI routes (keys checked, limits applied, uploads streamed to the spool).
* ``upload``: the streaming multipart reader (413 before the whole body is read).
* ``spool``: where uploads live; client file names never become paths.
* ``store`` and ``jobs``: the job store (SQLAlchemy Core: SQLite by default, PostgreSQL from a URL).
* ``keys``: API keys, stored as SHA-256 hashes.
* ``workers``: processes (or Ray actors) that load the models once and claim jobs.
* ``runner``: one job -> the same result document as ``forensics analyze --json``.
* ``webhooks`` and ``housekeeping``: signed callbacks, lease recovery, retention.
* ``server``: starts the workers and uvicorn, and stops them all.

Nothing here is imported by ``forensics --help`` or ``forensics models``: FastAPI,
uvicorn and SQLAlchemy load only inside ``forensics serve``.
"""
