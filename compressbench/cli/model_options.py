"""The options that pick a model: --model, --checkpoint, --config, --weights."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from torch import nn

from compressbench.provenance import load_model

ModelOption = typer.Option("teacher", "--model", "-m", help="registered model name or a saved model file")
CheckpointOption = typer.Option(None, "--checkpoint", help="FOMM checkpoint (kp_detector entry) or bare state dict")
ConfigOption = typer.Option(None, "--config", help="FOMM YAML config (model_params.kp_detector_params)")
WeightsOption = typer.Option("default", "--weights", help="default | random (random initialisation)")


def model_from_options(model: str, checkpoint: Optional[Path], config: Optional[Path], weights: str) -> nn.Module:
    return load_model(model, checkpoint=checkpoint, config=config, weights=weights)
