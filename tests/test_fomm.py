"""The FOMM drop-in: an export folder behind FOMM's KPDetector interface, driven by a stub of FOMM's
animation loop (its relative keypoint transfer and a generator that consumes the keypoints), and
benchmarks/fomm_demo.py run against a stub FOMM checkout with FOMM's layout and interface."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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


# -- benchmarks/fomm_demo.py against a stub FOMM checkout --------------------------------------------

DEMO = Path(__file__).parents[1] / "benchmarks" / "fomm_demo.py"

# FOMM's demo.py, reduced to the interface the script relies on: the same imports from modules/, the
# same signatures, yaml.load without a Loader as FOMM calls it, and FOMM's make_animation loop (its
# normalize_kp reduced to the relative keypoint transfer).
STUB_DEMO = '''
import numpy as np
import torch
import yaml

from modules.generator import OcclusionAwareGenerator
from modules.keypoint_detector import KPDetector


def load_checkpoints(config_path, checkpoint_path, cpu=False):
    with open(config_path) as f:
        config = yaml.load(f)
    generator = OcclusionAwareGenerator(**config['model_params']['generator_params'],
                                        **config['model_params']['common_params'])
    kp_detector = KPDetector(**config['model_params']['kp_detector_params'],
                             **config['model_params']['common_params'])
    checkpoint = torch.load(checkpoint_path, map_location=torch.device('cpu'))
    generator.load_state_dict(checkpoint['generator'])
    kp_detector.load_state_dict(checkpoint['kp_detector'])
    generator.eval()
    kp_detector.eval()
    return generator, kp_detector


def make_animation(source_image, driving_video, generator, kp_detector, relative=True, adapt_movement_scale=True, cpu=False):
    with torch.no_grad():
        predictions = []
        source = torch.tensor(source_image[np.newaxis].astype(np.float32)).permute(0, 3, 1, 2)
        driving = torch.tensor(np.array(driving_video)[np.newaxis].astype(np.float32)).permute(0, 4, 1, 2, 3)
        kp_source = kp_detector(source)
        kp_driving_initial = kp_detector(driving[:, :, 0])
        for frame_idx in range(driving.shape[2]):
            kp_driving = kp_detector(driving[:, :, frame_idx])
            if relative:
                kp_driving = {"value": kp_source["value"] + kp_driving["value"] - kp_driving_initial["value"]}
            out = generator(source, kp_source=kp_source, kp_driving=kp_driving)
            predictions.append(np.transpose(out['prediction'].data.cpu().numpy(), [0, 2, 3, 1])[0])
    return predictions
'''

# FOMM's KPDetector: compressbench's teacher is FOMM's detector with FOMM's parameter names
STUB_KP_DETECTOR = '''
from compressbench.models import DetectorConfig, KeypointDetector
from compressbench.models.detector import Hourglass


class KPDetector(KeypointDetector):
    def __init__(self, block_expansion, num_kp, num_channels, max_features, num_blocks, temperature,
                 estimate_jacobian=False, scale_factor=1, single_jacobian_map=False, pad=0):
        config = DetectorConfig(block_expansion=block_expansion, num_kp=num_kp, num_channels=num_channels,
                                max_features=max_features, num_blocks=num_blocks, temperature=temperature,
                                estimate_jacobian=estimate_jacobian, scale_factor=scale_factor,
                                single_jacobian_map=single_jacobian_map, pad=pad)
        super().__init__(Hourglass(block_expansion, num_channels, num_blocks, max_features), config)
'''

# FOMM's OcclusionAwareGenerator's signature; it moves the source by the mean keypoint motion
STUB_GENERATOR = '''
import torch


class OcclusionAwareGenerator(torch.nn.Module):
    def __init__(self, num_channels, num_kp, block_expansion, max_features, num_down_blocks,
                 num_bottleneck_blocks, estimate_occlusion_map=False, dense_motion_params=None, estimate_jacobian=False):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(1))

    def forward(self, source_image, kp_driving, kp_source):
        shift = (kp_driving["value"] - kp_source["value"]).mean(dim=1)
        theta = torch.cat([torch.eye(2).expand(len(source_image), 2, 2), -shift[:, :, None]], dim=2)
        grid = torch.nn.functional.affine_grid(theta, list(source_image.shape), align_corners=False)
        return {"prediction": torch.nn.functional.grid_sample(source_image, grid, align_corners=False) * self.gain}
'''

STUB_CONFIG = """
model_params:
  common_params: {num_kp: 10, num_channels: 3, estimate_jacobian: true}
  kp_detector_params: {temperature: 0.1, block_expansion: 8, max_features: 64, scale_factor: 0.25, num_blocks: 3}
  generator_params: {block_expansion: 8, max_features: 64, num_down_blocks: 2, num_bottleneck_blocks: 1,
                     estimate_occlusion_map: true, dense_motion_params: {block_expansion: 8, max_features: 64, num_blocks: 3}}
"""


@pytest.fixture(scope="module")
def stub_fomm(teacher, tmp_path_factory):
    """A FOMM checkout (demo.py, modules/ without __init__.py as FOMM's), its config, and a checkpoint
    whose kp_detector entry holds the exported teacher's weights."""
    root = tmp_path_factory.mktemp("fomm-checkout")
    (root / "modules").mkdir()
    (root / "demo.py").write_text(STUB_DEMO)
    (root / "modules" / "keypoint_detector.py").write_text(STUB_KP_DETECTOR)
    (root / "modules" / "generator.py").write_text(STUB_GENERATOR)
    (root / "config.yaml").write_text(STUB_CONFIG)
    torch.save({"kp_detector": teacher.state_dict(), "generator": {"gain": torch.ones(1)}}, root / "checkpoint.pth.tar")
    return root


def media(folder: Path) -> tuple[Path, Path]:
    """A source image larger than the export's frames (resized as FOMM's demo does) and a 3-frame driving GIF."""
    import imageio.v2 as imageio
    import numpy as np

    rng = np.random.default_rng(0)
    source, driving = folder / "source.png", folder / "driving.gif"
    imageio.imwrite(source, rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    imageio.mimsave(driving, [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(3)], duration=0.1)
    return source, driving


def test_the_demo_animates_with_the_export_in_place_of_fomms_detector(stub_fomm, export, tmp_path):
    import subprocess

    import imageio.v2 as imageio

    source, driving = media(tmp_path)
    result = tmp_path / "result.gif"
    run = subprocess.run(
        [sys.executable, str(DEMO), "--fomm", str(stub_fomm), "--config", str(stub_fomm / "config.yaml"),
         "--checkpoint", str(stub_fomm / "checkpoint.pth.tar"), "--export", str(export.folder),
         "--source", str(source), "--driving", str(driving), "--result", str(result)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    frames = imageio.mimread(result)
    assert len(frames) == 3 and frames[0].shape[:2] == (SIZE, SIZE)
    report = json.loads(result.with_suffix(".json").read_text())
    difference = report["keypoints_vs_fomm"]
    assert report["runtime"] == "onnxruntime" and difference["frames"] == 4  # the source and every driving frame
    assert difference["akd_px"] < 0.01 and difference["jacobian_error"] < 1e-3  # the export of FOMM's own weights
    assert run.stderr.count("\n") == 1 and run.stderr.startswith(f"wrote {result} (3 frames")


def load_demo_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fomm_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_refuses_bad_arguments_in_one_line(stub_fomm, export, tmp_path, capsys, monkeypatch):
    demo = load_demo_script()
    source, driving = media(tmp_path)
    given = ["--config", str(stub_fomm / "config.yaml"), "--checkpoint", str(stub_fomm / "checkpoint.pth.tar"),
             "--export", str(export.folder), "--source", str(source), "--driving", str(driving),
             "--result", str(tmp_path / "out.gif")]  # fmt: skip
    broken = tmp_path / "broken-checkout"
    (broken / "modules").mkdir(parents=True)
    (broken / "demo.py").write_text("import skimage_not_installed_here\n")
    (broken / "modules" / "keypoint_detector.py").write_text("")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the import inserts the checkout: undone after the test
    cases = [
        (given, "error: --fomm PATH is required: a checkout of AliaksandrSiarohin/first-order-model"),
        (["--fomm", str(tmp_path), *given], "is not a checkout of AliaksandrSiarohin/first-order-model"),
        (["--fomm", str(stub_fomm), *given[:-2], "--result", str(tmp_path / "nowhere" / "out.gif")], "folder"),
        (["--fomm", str(stub_fomm), *given[:4], "--export", str(tmp_path / "none"), *given[6:]], "does not exist"),
        (["--fomm", str(stub_fomm), "--bogus"], "unrecognized arguments: --bogus"),
        (["--fomm", str(broken), *given], "cannot import FOMM's demo.py from"),
    ]
    for argv, fragment in cases:
        assert demo.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err, err
    assert not (tmp_path / "out.gif").exists()
