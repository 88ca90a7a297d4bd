"""The FOMM drop-in: an export folder behind FOMM's KPDetector interface, driven by a stub of FOMM's
animation loop (its relative keypoint transfer and a generator that consumes the keypoints)."""

from __future__ import annotations

import pytest
import torch

import compressbench
from compressbench.errors import CompressbenchError
from compressbench.fomm import ExportedKPDetector
from tests.standins import small_teacher

SIZE = 64


def relative_keypoints(source: dict, driving: dict, initial: dict) -> dict:
    """FOMM's relative motion transfer (normalize_kp with relative movement and jacobians, no scale
    adaptation), written from the paper's formula: the driving motion since the first frame, applied
    to the source keypoints."""
    value = source["value"] + driving["value"] - initial["value"]
    jacobian = torch.matmul(torch.matmul(driving["jacobian"], torch.inverse(initial["jacobian"])), source["jacobian"])
    return {"value": value, "jacobian": jacobian}


def stub_generator(source: torch.Tensor, kp_source: dict, kp_driving: dict) -> dict:
    """Stands in for FOMM's OcclusionAwareGenerator: the same inputs, a frame shifted by the mean
    keypoint motion (enough to show the keypoints drive it)."""
    shift = (kp_driving["value"] - kp_source["value"]).mean(dim=1)  # (B, 2) in [-1, 1] units
    grid = torch.nn.functional.affine_grid(
        torch.cat([torch.eye(2).expand(len(source), 2, 2), -shift[:, :, None]], dim=2), list(source.shape), align_corners=False
    )
    return {"prediction": torch.nn.functional.grid_sample(source, grid, align_corners=False)}


def animate(source: torch.Tensor, driving: torch.Tensor, kp_detector) -> torch.Tensor:
    """FOMM's make_animation loop, reduced: detect, transfer relatively, generate, frame by frame."""
    with torch.no_grad():
        kp_source = kp_detector(source)
        initial = kp_detector(driving[:1])
        frames = []
        for index in range(len(driving)):
            kp_driving = kp_detector(driving[index : index + 1])
            frames.append(stub_generator(source, kp_source, relative_keypoints(kp_source, kp_driving, initial))["prediction"])
    return torch.cat(frames)


@pytest.fixture(scope="module")
def teacher():
    return small_teacher().eval()


@pytest.fixture(scope="module")
def export(teacher, tmp_path_factory):
    return compressbench.export(teacher, tmp_path_factory.mktemp("fomm") / "kp", runtime="onnxruntime", frames=4,
                                input_size=SIZE, repeats=2, warmup=0)  # fmt: skip


def test_the_drop_in_answers_as_fomms_kp_detector(export, teacher):
    detector = ExportedKPDetector(export.folder)
    frames = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    kp = detector(frames)
    assert set(kp) == {"value", "jacobian"}
    assert kp["value"].shape == (2, 10, 2) and kp["jacobian"].shape == (2, 10, 2, 2)
    assert kp["value"].dtype == torch.float64 and not kp["value"].requires_grad  # the frames' dtype comes back
    with torch.inference_mode():
        reference = teacher(frames.float())
    torch.testing.assert_close(kp["value"].float(), reference["value"], atol=1e-4, rtol=0)


def test_fomms_animation_loop_runs_unchanged_on_the_export(export, teacher):
    generator = torch.Generator().manual_seed(4)
    source, driving = torch.rand(1, 3, SIZE, SIZE, generator=generator), torch.rand(4, 3, SIZE, SIZE, generator=generator)
    with_export = animate(source, driving, ExportedKPDetector(export.folder))
    with_teacher = animate(source, driving, lambda x: {k: v for k, v in teacher(x).items() if k in ("value", "jacobian")})
    assert with_export.shape == (4, 3, SIZE, SIZE)
    torch.testing.assert_close(with_export, with_teacher, atol=1e-3, rtol=0)


def test_frames_of_another_size_are_refused_in_one_line(export):
    with pytest.raises(CompressbenchError, match="compiled for 64 px frames; got 128x128"):
        ExportedKPDetector(export.folder)(torch.rand(1, 3, 128, 128))
