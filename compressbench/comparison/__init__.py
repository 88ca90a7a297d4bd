"""Comparison tables: the teacher and its compressed variants, measured in one process.

- :func:`compare` measures rows (teacher first) and returns the record (:class:`~compressbench.records.ComparisonRecord`);
- :func:`compress_and_compare` applies a method chain, then compares every stage;
- the tables that render a record are in :mod:`compressbench.report.comparison_tables`; :func:`save_compressed` stores the final variant.
"""

from compressbench.comparison.pipeline import CompressRun, compress_and_compare
from compressbench.comparison.saving import save_compressed
from compressbench.comparison.table import compare
from compressbench.records import ROW_KEYS

__all__ = ["ROW_KEYS", "CompressRun", "compare", "compress_and_compare", "save_compressed"]
