"""Imports every method module so that each registers itself. One line per method."""
from compressbench.compression import dsconv  # noqa: F401
from compressbench.compression import asym  # noqa: F401
from compressbench.compression import exact  # noqa: F401
from compressbench.compression import prune  # noqa: F401
from compressbench.compression import quantize  # noqa: F401
