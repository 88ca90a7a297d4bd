"""The registry of static int8 back-ends and what each must provide.

A back-end turns one float part (a module taking and returning float tensors) plus calibration
inputs into a quantized module with the same interface, and can recreate that module's shape for
loading a saved variant (the saved state dict then supplies the real scales and int8 weights).
"""

from __future__ import annotations

import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.registry import Registry


def error_detail(exc: BaseException) -> str:
    """The first line of an exception's message (toolkit errors can span pages), or its type."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class QuantBackend:
    """One way to run int8 convolutions on x86. Subclasses set ``name``/``summary`` and implement
    :meth:`quantize_part` and :meth:`rebuild_part`."""

    name: str = ""
    summary: str = ""
    engine: str | None = None  # the torch quantized engine its kernels need, if any
    note: str = ""  # a caveat the method's report repeats

    def check_available(self) -> None:
        """Raise :class:`CompressbenchError` when this machine or install cannot run the back-end."""
        if self.engine is None:
            return
        engines = torch.backends.quantized.supported_engines
        if self.engine not in engines:
            raise CompressbenchError(
                f"quantize: backend {self.name} needs the quantized engine {self.engine!r}, which this "
                f"PyTorch build/CPU lacks (it has: {', '.join(engines)}); choose another --backend"
            )

    def select_engine(self) -> str | None:
        """Make ``engine`` torch's current quantized engine (packing and kernels depend on it)."""
        if self.engine is not None and torch.backends.quantized.engine != self.engine:
            torch.backends.quantized.engine = self.engine
        return self.engine

    def quantize_part(self, module: nn.Module, calibration: list[torch.Tensor], part: str) -> tuple[nn.Module, dict]:
        """(quantized module, JSON-like structure this back-end needs to rebuild it)."""
        raise NotImplementedError

    def rebuild_part(self, module: nn.Module, example: torch.Tensor, structure: dict, part: str) -> nn.Module:
        """A module shaped like :meth:`quantize_part`'s result (values arbitrary, loaded later)."""
        raise NotImplementedError


BACKENDS: Registry[QuantBackend] = Registry("quantize backend")


def register_backend(cls: type[QuantBackend]) -> type[QuantBackend]:
    """Class decorator: register one instance under ``cls.name``."""
    BACKENDS.register(cls.name, cls())
    return cls


def get_backend(name: str) -> QuantBackend:
    return BACKENDS.get(name)
