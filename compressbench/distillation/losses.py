"""Seed 001's distillation losses.

- L1 = MSE(kp_s, kp_t) + MSE(j_s, j_t)
- L2 = L1 + MSE(h_s, h_t), on post-softmax heatmaps (temperature 0.1, as the detectors produce them)
- L3 = L2 + MSE(AM_s, AM_t), attention maps F_sum^p(A) = sum_c |A_c|^p of the encoder outputs; where
  the student's encoder output has another shape (Squeeze U-Net: 512x4x4 vs the teacher's 1024x2x2),
  a 1x1 convolution and a max-pool bring it to the teacher's shape first (the adapter trains with the
  student).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.registry import Registry


def attention_map(activation: torch.Tensor, p: float = 2.0, normalize: bool = True) -> torch.Tensor:
    """F_sum^p: the sum over channels of |A_c|^p, (B, C, H, W) -> (B, H*W).

    With ``normalize`` each map is divided by its L2 norm (as in Zagoruyko & Komodakis' attention
    transfer), so the loss compares where the network attends, not how large its activations are."""
    maps = activation.abs().pow(p).sum(dim=1).flatten(1)
    if normalize:
        maps = F.normalize(maps, p=2, dim=1)
    return maps


def encoder_output(value) -> torch.Tensor:
    """The encoder's bottleneck: the tensor itself, or the last element of a list of skips."""
    if isinstance(value, (list, tuple)):
        return value[-1]
    return value


class EncoderAdapter(nn.Module):
    """1x1 conv to the teacher's channels, then max-pool to the teacher's spatial size."""

    def __init__(self, student_channels: int, teacher_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = teacher_shape
        self.conv = nn.Conv2d(student_channels, channels, kernel_size=1)
        self.pool = nn.AdaptiveMaxPool2d((height, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x))


@dataclass(frozen=True)
class LossWeights:
    keypoints: float = 1.0
    jacobian: float = 1.0
    heatmap: float = 1.0
    attention: float = 1.0
    p: float = 2.0
    normalize_attention: bool = True


@dataclass(frozen=True)
class LossSpec:
    name: str
    terms: tuple[str, ...]
    summary: str


LOSSES: Registry[LossSpec] = Registry("distillation loss")
LOSSES.register("l1", LossSpec("l1", ("keypoints", "jacobian"), "MSE(kp) + MSE(jacobian)"))
LOSSES.register("l2", LossSpec("l2", ("keypoints", "jacobian", "heatmap"), "L1 + MSE(post-softmax heatmaps)"))
LOSSES.register("l3", LossSpec("l3", ("keypoints", "jacobian", "heatmap", "attention"), "L2 + MSE(attention maps of the encoder outputs)"))


# the teacher output each term compares ("attention" uses the encoder output, tapped separately)
TERM_OUTPUT = {"keypoints": "value", "jacobian": "jacobian", "heatmap": "heatmap"}


def distillation_terms(student_out: dict, teacher_out: dict, weights: LossWeights, terms: tuple[str, ...],
                       student_encoded: torch.Tensor | None = None, teacher_encoded: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The weighted terms of a loss from both models' outputs (and encoder outputs for attention)."""
    out = {}
    if "keypoints" in terms:
        out["keypoints"] = weights.keypoints * F.mse_loss(student_out["value"], teacher_out["value"])
    if "jacobian" in terms and "jacobian" in teacher_out:
        out["jacobian"] = weights.jacobian * F.mse_loss(student_out["jacobian"], teacher_out["jacobian"])
    if "heatmap" in terms:
        if student_out["heatmap"].shape != teacher_out["heatmap"].shape:
            raise CompressbenchError(
                f"heatmap shapes differ (student {tuple(student_out['heatmap'].shape[1:])}, teacher "
                f"{tuple(teacher_out['heatmap'].shape[1:])}); L2/L3 need equal heatmap sizes"
            )
        out["heatmap"] = weights.heatmap * F.mse_loss(student_out["heatmap"], teacher_out["heatmap"])
    if "attention" in terms:
        if student_encoded is None or teacher_encoded is None:
            raise CompressbenchError("L3 needs both models' encoder outputs (a submodule named predictor.encoder)")
        am_s = attention_map(student_encoded, weights.p, weights.normalize_attention)
        am_t = attention_map(teacher_encoded, weights.p, weights.normalize_attention)
        out["attention"] = weights.attention * F.mse_loss(am_s, am_t)
    return out


class EncoderTap:
    """Keeps the latest output of ``model.predictor.encoder`` (via a forward hook)."""

    def __init__(self, model: nn.Module) -> None:
        encoder = getattr(getattr(model, "predictor", None), "encoder", None)
        if encoder is None:
            raise CompressbenchError(f"{type(model).__name__} has no predictor.encoder, so L3 cannot tap its encoder output")
        self.value: torch.Tensor | None = None
        self._handle = encoder.register_forward_hook(self._keep)

    def _keep(self, _module, _inputs, output) -> None:
        self.value = encoder_output(output)

    def remove(self) -> None:
        self._handle.remove()


class Distiller(nn.Module):
    """The student, the encoder adapter and the loss in one module: ``distiller(images) -> (loss, terms)``.

    Student and adapter are submodules (so one optimizer, one checkpoint and one DDP wrapper cover
    both); the teacher is held outside the module tree, runs without gradients, and is neither
    saved nor optimised."""

    def __init__(self, teacher: nn.Module, student: nn.Module, loss: str = "l1", weights: LossWeights = LossWeights(),
                 example: torch.Tensor | None = None) -> None:
        super().__init__()
        self.spec = LOSSES.get(loss)
        self.weights = weights
        self.student = student
        object.__setattr__(self, "teacher", teacher.eval())  # not a submodule: not saved, not trained
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.adapter: nn.Module = nn.Identity()
        self._taps: tuple[EncoderTap, EncoderTap] | None = None
        if "attention" in self.spec.terms:
            self._taps = (EncoderTap(student), EncoderTap(teacher))
            example = example if example is not None else torch.rand(1, 3, 256, 256)
            with torch.no_grad():
                was_training = student.training
                student.eval()
                student(example)
                teacher(example)
                student.train(was_training)
            s_shape, t_shape = self._taps[0].value.shape[1:], self._taps[1].value.shape[1:]
            if s_shape != t_shape:
                self.adapter = EncoderAdapter(s_shape[0], tuple(t_shape))

    def release_taps(self) -> None:
        """Remove the encoder hooks (after training, so the student leaves with no hook attached)."""
        if self._taps:
            for tap in self._taps:
                tap.remove()
            self._taps = None

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        self.teacher.eval()  # batch-norm statistics of the teacher never move
        return self

    def teacher_targets(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the loss needs of the teacher for ``images`` (computed once, e.g. for a labelled pool)."""
        with torch.no_grad():
            out = self.teacher(images)
            wanted = {TERM_OUTPUT[term] for term in self.spec.terms if term in TERM_OUTPUT}
            targets = {key: out[key] for key in wanted if key in out}
            if self._taps:
                targets["encoded"] = self._taps[1].value
        return targets

    def forward(self, images: torch.Tensor, targets: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """``(loss, terms)`` for ``images``; ``targets`` (from :meth:`teacher_targets`) spare the teacher's forward."""
        if targets is None:
            targets = self.teacher_targets(images)
        teacher_out, teacher_encoded = targets, targets.get("encoded")
        student_out = self.student(images)
        student_encoded = self.adapter(self._taps[0].value) if self._taps else None
        terms = distillation_terms(student_out, teacher_out, self.weights, self.spec.terms, student_encoded, teacher_encoded)
        total = torch.stack(list(terms.values())).sum()
        return total, {name: float(value.detach()) for name, value in terms.items()}
