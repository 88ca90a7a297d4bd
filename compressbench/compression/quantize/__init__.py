"""The ``quantize`` method: static int8 back-ends (a registry) and weight-only codebooks."""

from compressbench.compression.quantize import fx, ort, pt2e  # noqa: F401  (fill the backend registry)
from compressbench.compression.quantize.backends import BACKENDS, QuantBackend, get_backend, register_backend
from compressbench.compression.quantize.codebook import CodebookConv2d, CodebookLinear, kmeans_codebook
from compressbench.compression.quantize.method import DEFAULT_BACKEND, Quantize
from compressbench.compression.quantize.parts import DEFAULT_PARTS, PARTS

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_PARTS",
    "PARTS",
    "CodebookConv2d",
    "CodebookLinear",
    "QuantBackend",
    "Quantize",
    "get_backend",
    "kmeans_codebook",
    "register_backend",
]
