"""Comparison tables: the teacher and its compressed variants, measured in one process."""

from compressbench.comparison.compare import ROW_KEYS, compare

__all__ = ["ROW_KEYS", "compare"]
