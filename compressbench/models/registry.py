"""The model registry: ``register_model`` / ``create_model`` / ``list_models``."""

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


def register_model(name: str, description: str, default_config: DetectorConfig = DetectorConfig()):
    """Decorator: register ``factory(config) -> nn.Module`` under ``name``."""

    def add(factory: Callable[[DetectorConfig], nn.Module]):
        MODELS.register(name, ModelEntry(name, factory, description, default_config))
        return factory

    return add


def create_model(name: str, config: DetectorConfig | None = None) -> nn.Module:
    """Build the registered model ``name`` with random weights (``config`` overrides its defaults)."""
    entry = MODELS.get(name)
    return entry.factory(config or entry.default_config)


def list_models() -> list[ModelEntry]:
    """Every registered model, sorted by name."""
    return [MODELS.get(name) for name in MODELS.names()]
