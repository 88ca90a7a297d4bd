"""The options that pick a model: --model, --checkpoint, --config, --weights."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from compressbench.provenance import Variant, load_variant

ModelOption = typer.Option("teacher", "--model", "-m", help="registered model name or a saved model file")
CheckpointOption = typer.Option(None, "--checkpoint", help="FOMM checkpoint (kp_detector entry) or bare state dict")
ConfigOption = typer.Option(None, "--config", help="FOMM YAML config (model_params.kp_detector_params)")
WeightsOption = typer.Option("default", "--weights", help="default | random (random initialisation)")


def variant_from_options(model: str, checkpoint: Optional[Path], config: Optional[Path], weights: str) -> Variant:
    """The model the options name, loaded once: ``.module``, ``.provenance`` and ``.name`` (its row label)."""
    return load_variant(model, checkpoint=checkpoint, config=config, weights=weights)
