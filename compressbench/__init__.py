"""compressbench: profile, compress and compare keypoint detectors (FOMM's KPDetector is the teacher).

The Python API mirrors the command line (see :mod:`compressbench.api`)::

    import compressbench
    run = compressbench.compress("teacher", "prune,quantize", ratio=0.5)
    verdict = compressbench.check("benchmarks/baseline.json")      # .exit_code: 0 pass, 1 regression, 3 inconclusive

``compressbench bench`` and ``compressbench report`` are :func:`run_bench` and :func:`write_report`
here (``compressbench.api.bench`` / ``.report``): the names ``bench`` and ``report`` are the package's
own :mod:`compressbench.bench` module and :mod:`compressbench.report` package, which a function of
that name would hide (``import compressbench.report.render as render`` would then fail).
"""

from compressbench.api import (
    baseline,
    check,
    compare,
    compress,
    distill,
    evaluate,
    export,
    load_model,
    load_variant,
    machine,
    profile,
    save,
    search,
    sensitivity,
)
from compressbench.api import bench as run_bench
from compressbench.api import report as write_report
from compressbench.errors import CompressbenchError
from compressbench.models import create_model, list_models, register_model
from compressbench.provenance import Provenance, Stage, Variant, provenance_of

__version__ = "0.1.0"

__all__ = [
    "CompressbenchError",
    "Provenance",
    "Stage",
    "Variant",
    "__version__",
    "baseline",
    "check",
    "compare",
    "compress",
    "create_model",
    "distill",
    "export",
    "evaluate",
    "list_models",
    "load_model",
    "load_variant",
    "machine",
    "profile",
    "provenance_of",
    "register_model",
    "run_bench",
    "save",
    "search",
    "sensitivity",
    "write_report",
]
