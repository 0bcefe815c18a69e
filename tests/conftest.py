"""Shared fixtures. Fixture modules live beside this file and are loaded as pytest plugins."""
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["media_fixtures", "lipfd_fixtures", "face_fixtures", "gend_fixtures", "browser_fixtures", "service_fixtures"]


def pytest_configure(config):
    """Every test run gets its own FORENSICS_HOME (weights hash records, torch's inductor folder),
    removed at the end: tests never write into the user's cache, nor leave anything in $TMPDIR."""
    home = tempfile.mkdtemp(prefix="forensics-tests-home-")
    config._forensics_saved_home = os.environ.get("FORENSICS_HOME")
    config._forensics_home = home
    os.environ["FORENSICS_HOME"] = home


def pytest_unconfigure(config):
    home = getattr(config, "_forensics_home", None)
    if home is None:
        return
    shutil.rmtree(home, ignore_errors=True)
    saved = config._forensics_saved_home
    if saved is None:
        os.environ.pop("FORENSICS_HOME", None)
    else:
        os.environ["FORENSICS_HOME"] = saved
