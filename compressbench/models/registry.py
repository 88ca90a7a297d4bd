"""The model registry (``register_model`` / ``create_model`` / ``list_models``) and the registry of
base builders, which rebuild a saved model's starting point from JSON-like arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from compressbench.models.detector import DetectorConfig
from compressbench.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: how to build it and how to describe it."""

    name: str
    factory: Callable[[DetectorConfig], nn.Module]
    description: str
    default_config: DetectorConfig = DetectorConfig()


MODELS: Registry[ModelEntry] = Registry("model")

# kind -> builder(args: dict) -> nn.Module skeleton. A saved model names its base by kind and args
# (see compressbench.provenance), so loading runs only these builders, never code from the file.
BASE_BUILDERS: Registry[Callable[[dict], nn.Module]] = Registry("saved-model base")


def register_model(name: str, description: str, default_config: DetectorConfig = DetectorConfig()):
    """Decorator: register ``factory(config) -> nn.Module`` under ``name``."""

    def add(factory: Callable[[DetectorConfig], nn.Module]):
        MODELS.register(name, ModelEntry(name, factory, description, default_config))
        return factory

    return add


def register_base_builder(kind: str):
    """Decorator: register ``builder(args) -> nn.Module`` for saved models whose base is ``kind``."""
    return BASE_BUILDERS.register(kind)


def create_model(name: str, config: DetectorConfig | None = None) -> nn.Module:
    """Build the registered model ``name`` with random weights (``config`` overrides its defaults)."""
    entry = MODELS.get(name)
    return entry.factory(config or entry.default_config)


def list_models() -> list[ModelEntry]:
    """Every registered model, sorted by name."""
    return [MODELS.get(name) for name in MODELS.names()]
