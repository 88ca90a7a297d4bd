"""Compression methods (one module each, in a registry) and chains of them."""

from compressbench.compression import methods as _methods  # noqa: F401  (fills the registry)
from compressbench.compression.base import CompressionContext, CompressionMethod, Option, StageResult
from compressbench.compression.chain import Variant, compress, parse_chain, save_variant, stage_options
from compressbench.compression.registry import METHODS, get_method, list_methods, register_method

__all__ = [
    "METHODS",
    "CompressionContext",
    "CompressionMethod",
    "Option",
    "StageResult",
    "Variant",
    "compress",
    "get_method",
    "list_methods",
    "parse_chain",
    "register_method",
    "save_variant",
    "stage_options",
]
