"""Comparison tables: the teacher and its compressed variants, measured in one process.

- :func:`compare` measures rows (teacher first) and returns the JSON record;
- :func:`compress_and_compare` applies a method chain, then compares every stage;
- :func:`comparison_sections` renders a record; :func:`save_compressed` stores a variant
  (see :mod:`compressbench.comparison.saving` for the format and why loading it is safe).
"""

from compressbench.comparison.frames import FrameSource
from compressbench.comparison.pipeline import CompressRun, Origin, compress_and_compare
from compressbench.comparison.saving import origin_of, save_compressed, sidecar_path
from compressbench.comparison.sections import comparison_sections
from compressbench.comparison.table import ROW_KEYS, compare

__all__ = [
    "ROW_KEYS",
    "CompressRun",
    "FrameSource",
    "Origin",
    "compare",
    "comparison_sections",
    "compress_and_compare",
    "origin_of",
    "save_compressed",
    "sidecar_path",
]
