"""Knowledge distillation of the teacher into small students (seed 001)."""

from compressbench.distillation.losses import (
    LOSSES,
    Distiller,
    EncoderAdapter,
    LossWeights,
    attention_map,
    distillation_terms,
)

__all__ = ["LOSSES", "Distiller", "EncoderAdapter", "LossWeights", "attention_map", "distillation_terms"]
