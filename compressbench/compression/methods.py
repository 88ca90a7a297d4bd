"""The registry of compression methods: ``register_method`` / ``get_method`` / ``list_methods``."""

from __future__ import annotations

from compressbench.compression.base import CompressionMethod
from compressbench.registry import Registry

METHODS: Registry[CompressionMethod] = Registry("compression method")


def register_method(cls: type[CompressionMethod]) -> type[CompressionMethod]:
    """Class decorator: register one instance of ``cls`` under ``cls.name``."""
    METHODS.register(cls.name, cls())
    return cls


def get_method(name: str) -> CompressionMethod:
    return METHODS.get(name)


def list_methods() -> list[CompressionMethod]:
    return [METHODS.get(n) for n in METHODS.names()]
