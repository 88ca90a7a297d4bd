"""Seed 001's losses on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from compressbench.distillation import LOSSES, Distiller, EncoderAdapter, LossWeights, attention_map, distillation_terms
from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, build_teacher


def outputs(value: float, jac: float, heat: float) -> dict:
    return {
        "value": torch.full((1, 2, 2), value),
        "jacobian": torch.full((1, 2, 2, 2), jac),
        "heatmap": torch.full((1, 2, 3, 3), heat),
    }


def test_attention_map_by_hand():
    activation = torch.tensor([[[[1.0, 2.0]], [[-1.0, 0.0]]]])  # (B=1, C=2, H=1, W=2)
    raw = attention_map(activation, p=2, normalize=False)
    assert raw.tolist() == [[2.0, 4.0]]  # 1+1, 4+0
    normed = attention_map(activation, p=2, normalize=True)
    torch.testing.assert_close(normed, torch.tensor([[2 / math.sqrt(20), 4 / math.sqrt(20)]]))
    assert attention_map(activation, p=1, normalize=False).tolist() == [[2.0, 2.0]]


def test_l1_l2_terms_by_hand():
    student, teacher = outputs(0.5, 1.0, 0.2), outputs(0.0, 0.0, 0.0)
    terms = distillation_terms(student, teacher, LossWeights(), LOSSES.get("l1").terms)
    assert set(terms) == {"keypoints", "jacobian"}
    assert float(terms["keypoints"]) == pytest.approx(0.25)
    assert float(terms["jacobian"]) == pytest.approx(1.0)
    terms = distillation_terms(student, teacher, LossWeights(heatmap=10.0), LOSSES.get("l2").terms)
    assert float(terms["heatmap"]) == pytest.approx(10 * 0.04)


def test_l3_attention_term_by_hand():
    student, teacher = outputs(0.0, 0.0, 0.0), outputs(0.0, 0.0, 0.0)
    s_enc = torch.tensor([[[[1.0, 0.0]]]])  # attends to the left cell
    t_enc = torch.tensor([[[[0.0, 3.0]]]])  # attends to the right cell
    terms = distillation_terms(student, teacher, LossWeights(), LOSSES.get("l3").terms, s_enc, t_enc)
    # normalised maps [1, 0] and [0, 1]: MSE = (1 + 1) / 2
    assert float(terms["attention"]) == pytest.approx(1.0)


def test_adapter_matches_teacher_shape():
    adapter = EncoderAdapter(512, (1024, 2, 2))
    assert adapter(torch.rand(3, 512, 4, 4)).shape == (3, 1024, 2, 2)


def test_distillation_loss_on_models_with_different_encoders():
    teacher = build_teacher(DetectorConfig(block_expansion=8, max_features=64, num_blocks=3))
    student = build_teacher(DetectorConfig(block_expansion=4, max_features=32, num_blocks=3))
    example = torch.rand(2, 3, 64, 64)
    loss = Distiller(teacher, student, "l3", example=example)
    assert isinstance(loss.adapter, EncoderAdapter)  # 32x2x2 student vs 64x2x2 teacher
    assert not any(k.startswith("teacher") for k in loss.state_dict())
    assert {n for n, _ in loss.named_children()} == {"student", "adapter"}
    total, terms = loss.train()(example)
    assert set(terms) == {"keypoints", "jacobian", "heatmap", "attention"}
    assert float(total) == pytest.approx(sum(terms.values()), rel=1e-5)
    total.backward()
    assert loss.adapter.conv.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


def test_same_model_gives_zero_loss():
    teacher = build_teacher(DetectorConfig(block_expansion=8, max_features=64, num_blocks=3))
    loss = Distiller(teacher, teacher, "l3", example=torch.rand(1, 3, 64, 64)).eval()
    total, _ = loss(torch.rand(2, 3, 64, 64))
    assert float(total) == pytest.approx(0.0, abs=1e-10)


def test_unknown_loss_lists_known():
    with pytest.raises(CompressbenchError, match="unknown distillation loss 'l4'; known: l1, l2, l3"):
        LOSSES.get("l4")
