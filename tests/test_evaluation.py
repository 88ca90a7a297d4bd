"""evaluate(): exact numbers from a fake detector, zeros for a model against itself, errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pytest
import torch
from torch import nn

from compressbench.errors import CompressbenchError
from compressbench.evaluation import METRIC_KEYS, evaluate, predict, reference_points
from compressbench.models import DetectorConfig, build_teacher

K = 3
S = 16


@dataclass
class Frames:
    """A hand-made stand-in with the data contract's FrameBatch interface."""

    images: torch.Tensor
    landmarks: Optional[torch.Tensor] = None
    jacobians: Optional[torch.Tensor] = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def slice(self, start: int, stop: int) -> Frames:
        return Frames(
            self.images[start:stop],
            None if self.landmarks is None else self.landmarks[start:stop],
            None if self.jacobians is None else self.jacobians[start:stop],
        )


class FakeDetector(nn.Module):
    """Reads the landmarks written into the first image row, shifts them by ``shift``; jacobians
    are the identity plus ``jacobian_offset``; heatmaps one-hot (or uniform)."""

    def __init__(self, shift=(0.0, 0.0), jacobian_offset: float = 0.0, uniform: bool = False) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(shift))
        self.jacobian_offset = jacobian_offset
        self.uniform = uniform

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        n = images.shape[0]
        value = images[:, 0, 0, : 2 * K].reshape(n, K, 2) * 2 - 1 + self.shift
        jacobian = torch.eye(2).expand(n, K, 2, 2) + self.jacobian_offset
        if self.uniform:
            heatmap = torch.full((n, K, 4, 4), 1 / 16)
        else:
            heatmap = torch.zeros(n, K, 4, 4)
            heatmap[:, :, 1, 2] = 1.0
        return {"value": value, "jacobian": jacobian, "heatmap": heatmap}


def make_frames(n: int = 5, with_truth: bool = True) -> Frames:
    generator = torch.Generator().manual_seed(0)
    landmarks = torch.rand(n, K, 2, generator=generator) * 1.6 - 0.8
    images = torch.rand(n, 3, S, S, generator=generator)
    images[:, 0, 0, : 2 * K] = ((landmarks + 1) / 2).reshape(n, 2 * K)
    jacobians = torch.eye(2).expand(n, K, 2, 2).clone()
    return Frames(images, landmarks if with_truth else None, jacobians if with_truth else None)


def test_against_ground_truth_gives_the_hand_computed_errors():
    frames = make_frames()
    record = evaluate(FakeDetector(shift=(0.3, 0.4), jacobian_offset=0.25), frames, against="ground-truth", batch_size=2, show_progress=False)
    # every point is off by 0.5 normalised units = 0.5 * 16 / 2 = 4 px
    assert record["akd_px"] == pytest.approx(4.0, abs=1e-5)
    assert record["landmark_error_px"] == pytest.approx(4.0, abs=1e-5)
    assert record["nmae"] == pytest.approx((0.15 + 0.2) / 2, abs=1e-6)
    assert record["jacobian_error"] == pytest.approx(0.25, abs=1e-6)
    assert record["heatmap_mse"] is None and record["heatmap_kl"] is None
    assert record["heatmap_peak"] == 1.0
    assert record["frames"] == 5 and record["against"] == "ground-truth" and record["image_size"] == S
    assert any("heatmaps not compared" in note for note in record["notes"])


def test_against_a_teacher_compares_heatmaps_and_adds_ground_truth_errors():
    frames = make_frames()
    model = FakeDetector(shift=(0.0, -0.1), uniform=True)
    record = evaluate(model, frames, against="teacher", teacher=FakeDetector(), batch_size=3, image_size=256, show_progress=False)
    assert record["akd_px"] == pytest.approx(0.1 * 128, abs=1e-4)
    assert record["landmark_error_px"] == pytest.approx(0.1 * 128, abs=1e-4)
    assert record["nmae"] == pytest.approx(0.05 / 2, abs=1e-6)
    assert record["jacobian_error"] == 0.0
    # uniform 1/16 against one-hot: MSE = ((15/16)^2 + 15 (1/16)^2) / 16; KL(one-hot || uniform) = ln 16
    assert record["heatmap_mse"] == pytest.approx(((15 / 16) ** 2 + 15 / 256) / 16, abs=1e-7)
    assert record["heatmap_kl"] == pytest.approx(torch.log(torch.tensor(16.0)).item(), abs=1e-5)
    assert record["heatmap_peak"] == pytest.approx(1 / 16)
    assert record["notes"] == []


def test_frames_without_ground_truth_leave_its_metrics_empty():
    record = evaluate(FakeDetector(), make_frames(with_truth=False), teacher=FakeDetector(), show_progress=False)
    assert record["akd_px"] == 0.0
    assert record["landmark_error_px"] is None and record["nmae"] is None
    assert set(METRIC_KEYS) <= set(record)


def test_a_detector_against_itself_is_exactly_zero_and_batching_does_not_change_means():
    torch.manual_seed(0)
    model = build_teacher(DetectorConfig(block_expansion=8, max_features=64, num_blocks=3))
    with torch.no_grad():  # jacobians start as the identity everywhere; make them depend on the input
        model.jacobian.weight.normal_(0, 0.01)
    frames = Frames(torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1)), torch.zeros(4, 10, 2))
    model.train()
    same = evaluate(model, frames, teacher=model, batch_size=4, show_progress=False)
    assert model.training, "evaluate must restore the training flag"
    assert same["akd_px"] == 0.0 and same["jacobian_error"] == 0.0
    assert same["heatmap_mse"] == 0.0 and same["heatmap_kl"] == 0.0
    assert 1 / (10 * 10) < same["heatmap_peak"] <= 1.0  # 64 px input -> 16 -> 10x10 heatmaps
    one_by_one = evaluate(model, frames, against="ground-truth", batch_size=1, show_progress=False)
    all_at_once = evaluate(model, frames, against="ground-truth", batch_size=4, show_progress=False)
    for key in ("akd_px", "nmae", "heatmap_peak"):
        assert one_by_one[key] == pytest.approx(all_at_once[key], rel=1e-5)
    assert one_by_one["jacobian_error"] is None  # these frames carry no ground-truth jacobians


def test_predict_and_reference_points():
    frames = make_frames(5)
    out = predict(FakeDetector(shift=(0.1, 0.0)), frames, batch_size=2)
    assert out["value"].shape == (5, K, 2) and out["heatmap"].shape == (5, K, 4, 4)
    assert torch.allclose(out["value"], frames.landmarks + torch.tensor([0.1, 0.0]), atol=1e-6)
    assert torch.equal(reference_points("ground-truth", frames), frames.landmarks)
    assert torch.allclose(reference_points("teacher", frames, teacher=FakeDetector(), batch_size=2), frames.landmarks, atol=1e-6)


def test_unknown_reference_lists_the_choices():
    with pytest.raises(CompressbenchError, match="ground-truth, teacher"):
        evaluate(FakeDetector(), make_frames(), against="oracle", show_progress=False)


def test_ground_truth_needs_landmarks():
    with pytest.raises(CompressbenchError, match="no ground-truth landmarks"):
        evaluate(FakeDetector(), make_frames(with_truth=False), against="ground-truth", show_progress=False)


def test_mismatched_keypoint_counts_and_bad_batch_sizes_are_errors():
    class FiveKeypoints(FakeDetector):
        def forward(self, images):
            out = super().forward(images)
            return {**out, "value": torch.zeros(images.shape[0], 5, 2)}

    with pytest.raises(CompressbenchError, match="same number of keypoints"):
        evaluate(FiveKeypoints(), make_frames(), teacher=FakeDetector(), show_progress=False)
    with pytest.raises(CompressbenchError, match="batch size"):
        evaluate(FakeDetector(), make_frames(), teacher=FakeDetector(), batch_size=0, show_progress=False)


def test_a_module_that_is_not_a_detector_is_an_error():
    with pytest.raises(CompressbenchError, match="keypoint detector"):
        evaluate(nn.Identity(), make_frames(), teacher=FakeDetector(), show_progress=False)


def test_skipped_input_files_are_noted():
    frames = make_frames(with_truth=False)
    frames.skipped = 2
    record = evaluate(FakeDetector(), frames, teacher=FakeDetector(), show_progress=False)
    assert "2 unreadable input files were skipped" in record["notes"]


def test_the_record_carries_seed_notes_and_overlays_written_by_the_library(tmp_path):
    frames = make_frames(3)
    record = evaluate(FakeDetector(), frames, against="ground-truth", batch_size=2, show_progress=False, seed=7,
                      notes=[None, "hand-made note"], overlays=tmp_path / "shown", overlay_limit=2)  # fmt: skip
    assert record["seed"] == 7 and record["overlays"] == str(tmp_path / "shown")
    assert record["notes"][-1] == "hand-made note" and None not in record["notes"]
    assert sorted(p.name for p in (tmp_path / "shown").iterdir()) == ["overlay_000.png", "overlay_001.png"]
    plain = evaluate(FakeDetector(), frames, against="ground-truth", show_progress=False)
    assert plain["seed"] is None and plain["overlays"] is None


def test_an_overlay_folder_that_is_a_file_fails_before_any_frame_is_run(tmp_path):
    (tmp_path / "taken").write_text("x")
    calls = []
    detector = FakeDetector()
    detector.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(CompressbenchError, match="is a file"):
        evaluate(detector, make_frames(2), against="ground-truth", show_progress=False, overlays=tmp_path / "taken")
    assert calls == []
