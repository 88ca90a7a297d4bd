"""Where a model runs: one module per runtime, a registry, and per-op attribution.

``prepare(name, module, batch, threads, precision)`` returns a :class:`Prepared` runner; see
:mod:`.base` for the contract and the two ways to fail. Runtimes: ``torch`` (eager),
``onnxruntime``, ``openvino`` (both read the project's ONNX export), ``executorch`` (optional).
Precisions: ``fp32``, ``bf16``, ``int8``.
"""

from compressbench.runtimes import (  # noqa: F401  (registration order = listing order)
    executorch_runtime,
    onnxruntime_runtime,
    openvino_runtime,
    torch_runtime,
)
from compressbench.runtimes.base import (
    PRECISIONS,
    Prepared,
    RunRecord,
    RuntimeMissing,
    RuntimeUnavailable,
    check_precision,
    parse_runtime,
)
from compressbench.runtimes.registry import RUNTIMES, check_runtime, get_runtime, prepare

__all__ = [
    "PRECISIONS", "RUNTIMES", "Prepared", "RunRecord", "RuntimeMissing", "RuntimeUnavailable",
    "check_precision", "check_runtime", "get_runtime", "parse_runtime", "prepare",
]  # fmt: skip
