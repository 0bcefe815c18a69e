"""Shared fixtures. Fixture modules live beside this file and are loaded as pytest plugins."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["media_fixtures", "lipfd_fixtures", "face_fixtures", "gend_fixtures", "browser_fixtures", "service_fixtures"]
