"""In-place timing of every module during a real forward pass.

Each module gets a pre- and a post-forward hook that read ``perf_counter_ns``; on CPU, eager
PyTorch ops run synchronously, so the bracket is the module's own time, in the context of the
real forward (its inputs fresh from the previous layer, caches as they really are). The cost is
two Python calls per module; :func:`compressbench.runtimes.profile.profile` measures it by interleaving
instrumented and clean forwards and reports the overhead next to the results.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

import torch
from torch import nn


class ModuleTimer:
    """Context manager that times the named modules of ``model`` in every forward pass."""

    def __init__(self, model: nn.Module, names: Iterable[str] | None = None) -> None:
        modules = dict(model.named_modules())
        self.names = list(modules) if names is None else list(names)
        self._modules = {name: modules[name] for name in self.names}
        self._handles: list = []
        self._starts: dict[str, list[int]] = {}
        self.current: dict[str, int] = {}

    def __enter__(self) -> ModuleTimer:
        for name, module in self._modules.items():
            self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _pre(self, name: str):
        starts = self._starts.setdefault(name, [])

        def hook(_module, _inputs):
            starts.append(time.perf_counter_ns())

        return hook

    def _post(self, name: str):
        starts = self._starts.setdefault(name, [])
        current = self.current

        def hook(_module, _inputs, _output):
            elapsed = time.perf_counter_ns() - starts.pop()
            current[name] = current.get(name, 0) + elapsed

        return hook

    def run(self, fn) -> dict[str, float]:
        """Run ``fn`` once; return milliseconds per module (summed over repeated calls)."""
        self.current.clear()
        fn()
        return {name: ns / 1e6 for name, ns in self.current.items()}


def capture_shapes(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[tuple, tuple]]:
    """(input shape, output shape) without the batch dimension, per module, from its first call."""
    shapes: dict[str, tuple[tuple, tuple]] = {}

    def first_tensor(value):
        if isinstance(value, torch.Tensor):
            return value
        if isinstance(value, (list, tuple)):
            for item in value:
                found = first_tensor(item)
                if found is not None:
                    return found
        if isinstance(value, dict):
            return first_tensor(list(value.values()))
        return None

    def shape_of(value) -> tuple:
        if isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, torch.Tensor) for v in value):
            if len(value) > 1:  # e.g. the encoder's list of skips: report the deepest
                return tuple(value[-1].shape[1:])
        tensor = first_tensor(value)
        return tuple(tensor.shape[1:]) if tensor is not None else ()

    def record(name: str):
        def hook(_module, inputs, output):
            if name not in shapes:
                shapes[name] = (shape_of(inputs), shape_of(output))

        return hook

    run_with_forward_hooks(model, example, record)
    return shapes


def run_with_forward_hooks(
    model: nn.Module, example: torch.Tensor, hook_for: Callable[[str], Callable], names: Iterable[str] | None = None
) -> None:
    """One forward of ``model`` on ``example`` with ``hook_for(name)`` as the forward hook of each
    named module (``names``, default all), removed again afterwards whatever happens."""
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(hook_for(name)) for name in (modules if names is None else names)]
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
