"""The teacher: seed 000's parameter table, FOMM names, FOMM checkpoints and configs."""

from __future__ import annotations

import pytest
import torch

from compressbench.errors import CompressbenchError
from compressbench.models import DetectorConfig, build_teacher, create_model, read_fomm_config
from compressbench.profiling import count_params
from compressbench.provenance import load_model

DOWN_PARAMS = [1_920, 74_112, 295_680, 1_181_184, 4_721_664]
UP_PARAMS = [4_720_128, 2_360_064, 590_208, 147_648, 36_960]


@pytest.fixture(scope="module")
def teacher():
    return build_teacher().eval()


def test_parameter_table_matches_seed(teacher):
    down = [count_params(b) for b in teacher.predictor.encoder.down_blocks]
    up = [count_params(b) for b in teacher.predictor.decoder.up_blocks]
    assert down == DOWN_PARAMS
    assert up == UP_PARAMS
    assert count_params(teacher.predictor) == 14_129_568
    assert count_params(teacher) == 14_215_368
    assert count_params(teacher.kp) == 35 * 10 * 49 + 10
    assert count_params(teacher.jacobian) == 35 * 40 * 49 + 40


def test_state_dict_uses_fomm_names(teacher):
    keys = set(teacher.state_dict())
    for key in (
        "predictor.encoder.down_blocks.0.conv.weight",
        "predictor.encoder.down_blocks.4.norm.running_var",
        "predictor.decoder.up_blocks.0.norm.running_mean",
        "predictor.decoder.up_blocks.4.conv.bias",
        "kp.weight",
        "kp.bias",
        "jacobian.weight",
        "jacobian.bias",
        "down.weight",
    ):
        assert key in keys
    # 10 blocks x (conv w,b + bn w,b,mean,var,count) + kp 2 + jacobian 2 + anti-alias kernel
    assert len(keys) == 10 * 7 + 2 + 2 + 1
    assert tuple(teacher.state_dict()["down.weight"].shape) == (3, 1, 13, 13)


def test_forward_shapes_and_ranges(reduced_teacher):
    out = reduced_teacher(torch.rand(2, 3, 256, 256))
    assert out["value"].shape == (2, 10, 2)
    assert out["jacobian"].shape == (2, 10, 2, 2)
    assert out["heatmap"].shape == (2, 10, 58, 58)
    assert out["value"].abs().max() <= 1.0
    torch.testing.assert_close(out["heatmap"].sum(dim=(2, 3)), torch.ones(2, 10))
    # FOMM starts the jacobian head at weight 0, bias (1,0,0,1): every jacobian is the identity
    torch.testing.assert_close(out["jacobian"], torch.eye(2).expand(2, 10, 2, 2))


def test_fomm_checkpoint_round_trip(tmp_path, reduced_config):
    source = build_teacher(reduced_config).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.normal_(0, 0.05)
    path = tmp_path / "vox-cpk.pth.tar"
    torch.save({"kp_detector": source.state_dict(), "generator": {"w": torch.zeros(2)}, "epoch": 99}, path)
    loaded = load_model("teacher", checkpoint=path, config=reduced_config, weights="random")
    x = torch.rand(1, 3, 256, 256)
    torch.testing.assert_close(loaded(x)["value"], source(x)["value"], rtol=0, atol=0)


def test_bare_state_dict_loads(tmp_path, reduced_config):
    source = build_teacher(reduced_config)
    path = tmp_path / "bare.pt"
    torch.save(source.state_dict(), path)
    loaded = load_model("teacher", checkpoint=path, config=reduced_config, weights="random")
    assert torch.equal(loaded.kp.weight, source.kp.weight)


def test_mismatched_checkpoint_names_keys(tmp_path, reduced_config):
    path = tmp_path / "full.pt"
    torch.save({"kp_detector": build_teacher().state_dict()}, path)
    with pytest.raises(CompressbenchError, match=r"mis-shaped .*predictor\.encoder\.down_blocks\.0\.conv\.weight"):
        load_model("teacher", checkpoint=path, config=reduced_config, weights="random")
    state = build_teacher(reduced_config).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["kp.bias"]
    torch.save(state, path)
    with pytest.raises(CompressbenchError, match=r"missing: kp\.bias; unexpected: extra\.weight"):
        load_model("teacher", checkpoint=path, config=reduced_config, weights="random")


class _Payload:
    def __reduce__(self):
        return (print, ("this would run",))


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"kp_detector": _Payload()}, path)
    with pytest.raises(CompressbenchError, match="could run code, so it is refused"):
        load_model("teacher", checkpoint=path, weights="random")


def test_corrupt_and_foreign_checkpoints(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CompressbenchError, match="corrupt or not a PyTorch file"):
        load_model("teacher", checkpoint=corrupt, weights="random")
    foreign = tmp_path / "foreign.pt"
    torch.save({"generator": {"w": torch.zeros(1)}, "epoch": 3}, foreign)
    with pytest.raises(CompressbenchError, match="neither a FOMM checkpoint"):
        load_model("teacher", checkpoint=foreign, weights="random")


def test_fomm_yaml_config(tmp_path, reduced_yaml, reduced_config):
    assert read_fomm_config(reduced_yaml) == reduced_config
    vox = tmp_path / "vox-256.yaml"
    vox.write_text(
        "dataset_params: {frame_shape: [256, 256, 3]}\n"
        "model_params:\n"
        "  common_params: {num_kp: 10, num_channels: 3, estimate_jacobian: True}\n"
        "  kp_detector_params: {temperature: 0.1, block_expansion: 32, max_features: 1024,"
        " scale_factor: 0.25, num_blocks: 5}\n"
        "  generator_params: {block_expansion: 64}\n"
    )
    assert read_fomm_config(vox) == DetectorConfig()
    model = load_model("teacher", config=vox, weights="random")
    assert count_params(model) == 14_215_368


@pytest.mark.parametrize(
    "text, message",
    [
        ("model_params: [unclosed", "not valid YAML"),
        ("foo: 1\n", "no model_params.kp_detector_params"),
        ("model_params:\n  kp_detector_params: {block_expansion: 8, wings: 2}\n", "unknown detector parameter"),
        ("model_params:\n  kp_detector_params: {block_expansion: 8}\n", "missing detector parameter"),
        (
            "model_params:\n  common_params: {num_kp: 10, num_channels: 3}\n  kp_detector_params: "
            "{temperature: 0.1, block_expansion: -8, max_features: 64, num_blocks: 3}\n",
            "block_expansion must be a positive integer",
        ),
    ],
)
def test_bad_yaml_configs(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CompressbenchError, match=message):
        read_fomm_config(path)


def test_unknown_model_lists_known_ones():
    with pytest.raises(CompressbenchError, match=r"unknown model 'nope'; known: .*teacher"):
        create_model("nope")
    with pytest.raises(CompressbenchError, match="unknown weights"):
        load_model("teacher", weights="pretrained")
