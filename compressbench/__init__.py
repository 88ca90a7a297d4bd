"""compressbench: profile, compress and compare keypoint detectors (FOMM's KPDetector is the teacher)."""

from compressbench.errors import CompressbenchError
from compressbench.models import create_model, list_models, load_model, register_model
from compressbench.profiling import profile

__version__ = "0.1.0"

__all__ = ["CompressbenchError", "__version__", "create_model", "list_models", "load_model", "profile", "register_model"]
