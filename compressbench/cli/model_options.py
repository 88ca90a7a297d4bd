"""The options that pick a model: --model, --checkpoint, --config, --weights (the api functions'
``model``, ``checkpoint``, ``config`` and ``weights``)."""

from __future__ import annotations

import typer

ModelOption = typer.Option("teacher", "--model", "-m", help="registered model name or a saved model file")
CheckpointOption = typer.Option(None, "--checkpoint", help="FOMM checkpoint (kp_detector entry) or bare state dict")
ConfigOption = typer.Option(None, "--config", help="FOMM YAML config (model_params.kp_detector_params)")
WeightsOption = typer.Option("default", "--weights", help="default | random (random initialisation)")
