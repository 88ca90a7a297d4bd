"""A drop-in for FOMM's keypoint detector: an export folder as an ``nn.Module`` with the interface of
FOMM's ``KPDetector``, so FOMM's own animation code (``make_animation``, ``normalize_kp``, the
generator and the dense-motion network) runs on the compressed detector unchanged::

    from compressbench.fomm import ExportedKPDetector
    kp_detector = ExportedKPDetector("small-int8")          # what compressbench export wrote
    predictions = make_animation(source, driving, generator, kp_detector, relative=True)

FOMM calls ``kp_detector(frames)`` with (B, 3, H, W) float frames in [0, 1] on its device and reads
``kp["value"]`` (B, K, 2) and ``kp["jacobian"]`` (B, K, 2, 2). The export runs on the CPU in its own
runtime (OpenVINO, ONNX Runtime or ExecuTorch); the outputs come back on the frames' device and in
their dtype, without gradients (FOMM animates under ``torch.no_grad``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.runtimes.deployed import DeployedModel

FOMM_OUTPUTS = ("value", "jacobian")


class ExportedKPDetector(nn.Module):
    """FOMM's ``KPDetector`` interface over an export folder (or a deployed file) of compressbench."""

    def __init__(self, export: str | Path, threads: int | None = None) -> None:
        super().__init__()
        self.deployed = DeployedModel(export)
        missing = [name for name in FOMM_OUTPUTS if name not in self.deployed.outputs]
        if missing:
            raise CompressbenchError(f"{export} has no {', '.join(missing)} output; FOMM's animation needs value and jacobian")
        self.threads = threads

    @property
    def frame_size(self) -> int:
        return self.deployed.fixed_input_size

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise CompressbenchError(f"FOMM frames are (B, 3, H, W); got {tuple(x.shape)}")
        if tuple(x.shape[-2:]) != (self.frame_size, self.frame_size):
            raise CompressbenchError(
                f"this export was compiled for {self.frame_size} px frames; got {x.shape[-2]}x{x.shape[-1]} "
                "(resize the frames as FOMM's demo does, or export at that size with --input-size)"
            )
        if self.threads is not None:
            self.deployed.runner(self.threads)
        with torch.no_grad():
            out = self.deployed(x.detach().to("cpu", torch.float32))
        return {name: out[name].to(device=x.device, dtype=x.dtype) for name in FOMM_OUTPUTS}
