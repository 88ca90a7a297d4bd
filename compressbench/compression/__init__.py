"""Compression methods (one module each, in a registry) and chains of them.

Every method module is imported here, explicitly, so that importing the package registers them all.
"""

from compressbench.compression import asym, dsconv, exact, head_kernel, mixed, prune, quantize, recover, stem  # noqa: F401  (register the methods)
from compressbench.compression.base import CompressionContext, CompressionMethod, Option, StageResult
from compressbench.compression.chain import apply_chain, parse_chain, parse_set_options, replay, stage_options
from compressbench.compression.methods import METHODS, get_method, list_methods, register_method

__all__ = [
    "METHODS",
    "CompressionContext",
    "CompressionMethod",
    "Option",
    "StageResult",
    "apply_chain",
    "get_method",
    "list_methods",
    "parse_chain",
    "parse_set_options",
    "register_method",
    "replay",
    "stage_options",
]
