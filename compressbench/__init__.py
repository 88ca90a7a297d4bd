"""compressbench: profile, compress and compare keypoint detectors (FOMM's KPDetector is the teacher).

The Python API mirrors the command line (see :mod:`compressbench.api`)::

    import compressbench
    run = compressbench.compress("teacher", "prune,quantize", ratio=0.5)
"""

from compressbench.api import compare, compress, distill, evaluate, export, load_model, profile, save, search
from compressbench.errors import CompressbenchError
from compressbench.models import create_model, list_models, register_model
from compressbench.provenance import Provenance, Stage, Variant, provenance_of

__version__ = "0.1.0"

__all__ = [
    "CompressbenchError",
    "Provenance",
    "Stage",
    "Variant",
    "__version__",
    "compare",
    "compress",
    "create_model",
    "distill",
    "export",
    "evaluate",
    "list_models",
    "load_model",
    "profile",
    "provenance_of",
    "register_model",
    "save",
    "search",
]
