"""Training: a generic loop (validation, early stopping, exact resume, torchrun/DDP), checkpoints in
FOMM's layout, random warps, and the teacher's losses and training recipe."""

from compressbench.training.checkpoints import load_training_checkpoint, save_checkpoint
from compressbench.training.distributed import DistContext, setup
from compressbench.training.equivariance_warps import Warp, WarpConfig, affine_warp, identity_warp, random_warp
from compressbench.training.export import export_teacher, half_state_dict
from compressbench.training.teacher import (
    LR_SCHEDULES,
    TeacherBatch,
    TeacherTrainOptions,
    equivariance_error_px,
    evaluate_teacher,
    train_teacher,
)
from compressbench.training.teacher_losses import (
    TeacherLossWeights,
    equivariance_jacobian_loss,
    equivariance_value_loss,
    jacobian_loss,
    keypoint_loss,
    teacher_loss,
)
from compressbench.training.trainer import BatchSource, TrainConfig, TrainResult, indexed, seed_everything, train

__all__ = [
    "LR_SCHEDULES",
    "BatchSource",
    "DistContext",
    "TeacherBatch",
    "TeacherLossWeights",
    "TeacherTrainOptions",
    "TrainConfig",
    "TrainResult",
    "Warp",
    "WarpConfig",
    "affine_warp",
    "equivariance_error_px",
    "equivariance_jacobian_loss",
    "equivariance_value_loss",
    "evaluate_teacher",
    "export_teacher",
    "half_state_dict",
    "identity_warp",
    "indexed",
    "jacobian_loss",
    "keypoint_loss",
    "load_training_checkpoint",
    "random_warp",
    "save_checkpoint",
    "seed_everything",
    "setup",
    "teacher_loss",
    "train",
    "train_teacher",
]
