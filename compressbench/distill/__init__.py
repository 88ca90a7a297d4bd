"""Knowledge distillation of the teacher into small students (seed 001)."""

from compressbench.distill.losses import (
    LOSSES,
    DistillationLoss,
    EncoderAdapter,
    LossWeights,
    attention_map,
    distillation_terms,
)

__all__ = ["LOSSES", "DistillationLoss", "EncoderAdapter", "LossWeights", "attention_map", "distillation_terms"]
