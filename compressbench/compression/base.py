"""What a compression method is, and the records a compression run produces.

A method turns a module into a new module (never mutating its input) and returns a
:class:`StageResult`: the new module, a JSON-like ``structure`` that lets :meth:`rebuild` recreate
the module's *shape* from a fresh base model (so saved variants reload without unpickling code),
and a ``report`` of what it did (e.g. per-layer approximation errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn

from compressbench.errors import CompressbenchError


@dataclass(frozen=True)
class Option:
    """One option of a method: its type, default, help, and an optional validator."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None  # returns an error sentence or None

    def parse(self, value: Any, method: str) -> Any:
        """Convert ``value`` (possibly a string from the CLI) and validate it."""
        try:
            if self.type is bool and isinstance(value, str):
                lowered = value.lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                value = lowered in ("1", "true", "yes")
            elif value is not None and not isinstance(value, self.type):
                value = self.type(value)
        except (TypeError, ValueError):
            raise CompressbenchError(
                f"{method}: option {self.name} expects {self.type.__name__}, got {value!r}"
            ) from None
        if self.choices is not None and value not in self.choices:
            raise CompressbenchError(
                f"{method}: unknown {self.name} {value!r}; choose one of: {', '.join(map(str, self.choices))}"
            )
        if self.check is not None and value is not None:
            problem = self.check(value)
            if problem:
                raise CompressbenchError(f"{method}: {self.name} {problem}")
        return value


@dataclass
class CompressionContext:
    """What methods may need beyond the model: frames for calibration or importance, a seed, the
    chain's teacher (what ``recover`` fine-tunes towards) and a device to train on."""

    calibration_frames: Callable[[int], torch.Tensor] | None = None  # n -> (n, 3, S, S) in [0, 1]
    input_shape: tuple[int, ...] = (1, 3, 256, 256)
    seed: int = 0
    show_progress: bool = True
    teacher: nn.Module | None = None  # None: compress() fills in the model the chain starts from
    device: str = "cpu"
    # what stages may share within one context, keyed by what decides it: recover's teacher-labelled
    # pools (a search runs dozens of recover stages against one teacher on the same frames)
    shared: dict = field(default_factory=dict)
    # (start, count) -> calibration frames start .. start + count - 1, the ones calibration_frames(start
    # + count)[start:] gives, made without those before (fewer where the source ends), e.g.
    # FrameSource.calibration_at: recover's pool refresh streams through it. None: frames_at reads
    # calibration_frames(start + count), which holds every frame before start too
    calibration_stream: Callable[[int, int], torch.Tensor] | None = None

    def frames(self, count: int) -> torch.Tensor:
        if self.calibration_frames is None:
            raise CompressbenchError("this method needs frames, but none were given (pass --data)")
        return self.calibration_frames(count)

    def frames_at(self, start: int, count: int) -> torch.Tensor:
        """Calibration frames ``start .. start + count - 1`` (fewer where the source ends)."""
        if self.calibration_stream is not None:
            return self.calibration_stream(start, count)
        return self.frames(start + count)[start:]

    def example(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        return torch.rand(*self.input_shape, generator=generator)


@dataclass
class StageResult:
    """The output of one method applied once."""

    module: nn.Module
    structure: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    int8: bool = False  # its MACs run in 8-bit integer arithmetic


class CompressionMethod:
    """Base class: subclasses set ``name``, ``summary``, ``options`` and implement ``apply``/``rebuild``."""

    name: str = ""
    summary: str = ""
    options: tuple[Option, ...] = ()
    int8: bool = False
    structural: bool = False  # changes the architecture and so loses agreement: ``recover`` pays after it

    def option_names(self) -> list[str]:
        return [o.name for o in self.options]

    def resolve(self, given: dict) -> dict:
        """Defaults overlaid with ``given`` (only this method's options), parsed and validated."""
        specs = {o.name: o for o in self.options}
        unknown = sorted(set(given) - set(specs))
        if unknown:
            known = ", ".join(sorted(specs)) or "(none)"
            raise CompressbenchError(f"{self.name}: unknown option(s) {', '.join(unknown)}; known: {known}")
        resolved = {name: spec.default for name, spec in specs.items()}
        for name, value in given.items():
            resolved[name] = specs[name].parse(value, self.name)
        return resolved

    def unavailable(self, options: dict) -> str | None:
        """Why this machine cannot apply the method with ``options`` (e.g. a missing back-end), or
        None; asked before any work starts, so a suite can skip or refuse a variant up front."""
        return None

    def apply(self, model: nn.Module, options: dict, context: CompressionContext) -> StageResult:
        raise NotImplementedError

    def rebuild(self, model: nn.Module, options: dict, structure: dict) -> nn.Module:
        """Recreate the module's shape (weights arbitrary) from ``structure``, for loading."""
        raise NotImplementedError

    def folds_batchnorm(self, options: dict) -> bool:
        """Whether this stage removes BatchNorm layers (so it runs after channel pruning; see order.py)."""
        return False

    def scores_channels(self, options: dict) -> bool:
        """Whether this stage ranks channels by weights/BatchNorm (so BatchNorm folding waits for it)."""
        return False


def named_children_recursive(module: nn.Module, types: tuple[type, ...]) -> Iterator[tuple[str, nn.Module]]:
    """(name, module) for every submodule of ``types``."""
    for name, child in module.named_modules():
        if isinstance(child, types):
            yield name, child


def replace_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` at dotted path ``name`` inside ``root``."""
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)
