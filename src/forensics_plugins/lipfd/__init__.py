"""LipFD ("Lips Are Lying", NeurIPS 2024) as a forensics plugin.

Importing this module is cheap: the detector class is registered by name and
its card comes from plugin_manifest.yaml, so listing detectors imports neither
torch nor the pipeline.
"""
from forensics_core import hookimpl
from forensics_core.manifest import builtin_manifest


@hookimpl
def register_detectors(register):
    register("forensics_plugins.lipfd.detector:LipFDDetector", card=builtin_manifest().card("LIPFD-V1"))
