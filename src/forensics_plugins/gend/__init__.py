"""GenD ("Deepfake Detection that Generalizes Across Benchmarks", WACV 2026) as a forensics plugin.

Importing this module is cheap: the detector class is registered by name and its
card comes from plugin_manifest.yaml, so listing detectors imports neither torch
nor OpenCV.
"""
from forensics_core import hookimpl
from forensics_core.manifest import builtin_manifest


@hookimpl
def register_detectors(register):
    register("forensics_plugins.gend.detector:GenDDetector", card=builtin_manifest().card("GEND-CLIP-L14"))
