"""``executorch``: a phone target, measured on this machine as a proxy.

Only registered so ``--runtime executorch`` answers clearly: ExecuTorch is an optional extra
(``pip install compressbench[executorch]``) that is not installed beside this project's torch
2.13.0 CPU build. Checked without installing: executorch 1.5.1's wheel names no torch in its
Requires-Dist, but it requires ``torchao>=0.18,<0.19``, ``numpy>=2``, coremltools 9.0,
scikit-learn, hydra-core and more, and its compiled extensions are built against one torch
release; installing it into the shared environment risks replacing packages others rely on, so it
is not a default dependency. With it installed, a runner would export with ``torch.export``,
lower with the XNNPACK partitioner to a ``.pte`` and run it in ExecuTorch's runtime: XNNPACK's x86
kernels, a proxy for a phone, not a phone.
"""

from __future__ import annotations

from compressbench.runtimes.base import Prepared, RuntimeMissing, RuntimeUnavailable
from compressbench.runtimes.registry import register_runtime

WHY = (
    "executorch is not installed: it is an optional extra (pip install 'compressbench[executorch]') whose wheels "
    "pin torchao 0.18 and build against their own torch release; this environment keeps torch 2.13.0 (see README, Runtimes)"
)


@register_runtime
class ExecuTorchRuntime:
    name = "executorch"
    summary = "ExecuTorch with the XNNPACK delegate (x86 kernels, a proxy for a phone); optional extra"

    def version(self) -> str:
        try:
            import executorch  # noqa: F401
        except ImportError:
            raise RuntimeMissing(WHY) from None
        from importlib.metadata import version

        return version("executorch")

    def prepare(self, module, batch, threads, precision, calibration=None, calibration_method=None) -> Prepared:
        self.version()
        raise RuntimeUnavailable(
            "executorch runner not implemented in this build: export/run it with ExecuTorch's own tools"
        )
