"""Shared fixtures: reduced model configurations keep the suite fast."""

from __future__ import annotations

import pytest
import torch

from compressbench.models import DetectorConfig, build_teacher

REDUCED = DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)
REDUCED_YAML = """\
model_params:
  common_params:
    num_kp: 10
    num_channels: 3
    estimate_jacobian: true
  kp_detector_params:
    temperature: 0.1
    block_expansion: 8
    max_features: 64
    scale_factor: 0.25
    num_blocks: 3
"""


@pytest.fixture(autouse=True)
def _one_thread_and_seeded():
    """One torch thread per test: faster than two on a loaded 2-core machine, and steadier."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("compressbench-cache")


@pytest.fixture(autouse=True)
def _private_cache(_session_cache, monkeypatch):
    """Measured peaks go to a cache of this test session, never the user's ~/.cache."""
    monkeypatch.setenv("COMPRESSBENCH_CACHE", str(_session_cache))


@pytest.fixture
def reduced_config() -> DetectorConfig:
    return REDUCED


@pytest.fixture
def reduced_teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_teacher(REDUCED).eval()


@pytest.fixture
def reduced_yaml(tmp_path):
    path = tmp_path / "reduced.yaml"
    path.write_text(REDUCED_YAML)
    return path


@pytest.fixture(scope="session")
def int8_variant():
    """quantize backend=fx on the reduced teacher: torch.ao int8 modules with packed weights, BatchNorm folded."""
    from tests.standins import quantized

    return quantized({"backend": "fx", "calib": 2}, "int8")


@pytest.fixture(scope="session")
def ort_variant():
    """quantize backend=onnxruntime on the reduced teacher: the parts run as int8 ONNX graphs."""
    from tests.standins import quantized

    return quantized({"backend": "onnxruntime", "calib": 2}, "ort")
