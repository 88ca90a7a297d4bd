"""Imports every method module so that each registers itself. One line per method."""
from compressbench.compression import (
    asym,  # noqa: F401
    dsconv,  # noqa: F401
    exact,  # noqa: F401
    prune,  # noqa: F401
    quantize,  # noqa: F401
    recover,  # noqa: F401
)
