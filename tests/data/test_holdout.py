import imageio.v3 as iio
import numpy as np
import pytest
import torch

from compressbench.data import FrameSource, load_frames
from compressbench.errors import CompressbenchError


def test_synthetic_evaluation_and_calibration_come_from_disjoint_splits():
    source = FrameSource("synthetic", eval_count=2, seed=0, size=32)
    evaluation = source.evaluation().images
    calibration = source.calibration(2)
    assert evaluation.shape == calibration.shape == (2, 3, 32, 32)
    assert not any(torch.equal(e, c) for e in evaluation for c in calibration)
    assert torch.equal(FrameSource("synthetic", 2, 0, 32).evaluation().images, evaluation)  # deterministic


def test_a_folder_holds_out_its_first_frames_for_evaluation(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        iio.imwrite(tmp_path / f"{i:02d}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    source = FrameSource(str(tmp_path), eval_count=2, size=16)
    everything = load_frames(tmp_path, size=16).images
    assert torch.equal(source.evaluation().images, everything[:2])
    assert torch.equal(source.calibration(3), everything[2:5])
    with pytest.raises(CompressbenchError, match="has 5 frames, but 2 are held out"):
        source.calibration(4)
    with pytest.raises(CompressbenchError, match="--frames asks for 6"):
        FrameSource(str(tmp_path), eval_count=6, size=16).evaluation()
