"""Student predictors: shapes, exact parameter counts, widths, registry, saved-model round trip."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.fx import symbolic_trace
from typer.testing import CliRunner

from compressbench.cli import app
from compressbench.errors import CompressbenchError, UnknownNameError
from compressbench.models import MODELS, DetectorConfig, build_teacher, create_model
from compressbench.models.students import STUDENTS, build_student, student_builder_args
from compressbench.profiling import count_params
from compressbench.profiling.layout import layout_for
from compressbench.provenance import Base, Provenance, load_model, provenance_of, read_model_file, save_model

FAMILIES = ["edanet", "erfnet", "esnet", "lednet", "squeeze-unet"]

# (whole detector, predictor) parameters; the heads add 16*49*50 + 50 at width 1, 8*49*50 + 50 at 0.5.
PARAMS = {
    "edanet": (350_905, 311_655),
    "edanet-0.5": (96_601, 76_951),
    "erfnet": (565_521, 526_271),
    "erfnet-0.5": (152_505, 132_855),
    "esnet": (471_281, 432_031),
    "esnet-0.5": (128_681, 109_031),
    "lednet": (845_321, 806_071),
    "lednet-0.5": (222_917, 203_267),
    "squeeze-unet": (1_220_546, 1_181_296),
    "squeeze-unet-0.5": (316_698, 297_048),
}

# Encoder (bottleneck) output for a 256x256 frame, i.e. a 64x64 predictor input.
BOTTLENECKS = {
    "squeeze-unet": (512, 4, 4),
    "erfnet": (64, 8, 8),
    "edanet": (276, 8, 8),
    "esnet": (64, 8, 8),
    "lednet": (96, 8, 8),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine, thread hand-offs cost more than they save."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def frames(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, 256, 256, generator=torch.Generator().manual_seed(seed))


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Perturb every weight and BatchNorm statistic (keeping their scale, so activations neither
    vanish into slow denormal floats nor explode) so that outputs depend on every tensor."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.rand(tensor.shape, generator=generator)
                if name.endswith("running_var"):
                    tensor.copy_(0.5 + noise)
                else:  # zero-initialised tensors (biases, the jacobian head) get a small offset
                    tensor.copy_(tensor * (0.5 + noise) + 0.02 * (noise - 0.5))


@pytest.mark.parametrize("name", FAMILIES)
def test_detector_outputs_and_bottleneck_shapes(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    randomize(model, 1)
    seen = []
    model.predictor.encoder.register_forward_hook(lambda _m, _i, output: seen.append(output))
    with torch.inference_mode():
        out = model(frames(2))
    assert tuple(out["value"].shape) == (2, 10, 2)
    assert tuple(out["jacobian"].shape) == (2, 10, 2, 2)
    assert tuple(out["heatmap"].shape) == (2, 10, 58, 58)
    assert out["value"].abs().max() <= 1.0
    torch.testing.assert_close(out["heatmap"].sum(dim=(2, 3)), torch.ones(2, 10))
    assert model.predictor.out_filters == 16
    assert model.kp.in_channels == model.jacobian.in_channels == 16
    # the encoder's output (its last element for the U-Net, which also hands on skips) is the bottleneck
    assert isinstance(seen[0], list) == (name == "squeeze-unet")
    bottleneck = seen[0][-1] if isinstance(seen[0], list) else seen[0]
    assert tuple(bottleneck.shape) == (2, *BOTTLENECKS[name])


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_exact_parameter_counts(name):
    model = create_model(name)
    out = model.predictor.out_filters
    assert (count_params(model), count_params(model.predictor)) == PARAMS[name]
    assert count_params(model) - count_params(model.predictor) == out * 49 * 10 + 10 + out * 49 * 40 + 40


def fire_params(in_channels: int, squeeze: int, out_channels: int) -> int:
    """squeeze 1x1 (no bias) + BN, expand 1x1 and 3x3 to half the output each (no bias) + BN."""
    half = out_channels // 2
    return in_channels * squeeze + 2 * squeeze + squeeze * half + 9 * squeeze * half + 2 * out_channels


def test_squeeze_unet_parameters_by_hand():
    stem = 3 * 9 * 32 + 2 * 32
    encoder = [(32, 16, 64), (64, 16, 64), (64, 32, 128), (128, 32, 128)]
    encoder += [(128, 64, 256), (256, 64, 256), (256, 128, 512), (512, 128, 512)]
    # decoder: up-sampled features + skip in, a quarter of the skip as squeeze
    decoder = [(512 + 256, 64, 256), (256 + 128, 32, 128), (128 + 64, 16, 64), (64 + 32, 8, 16)]
    predictor = stem + sum(fire_params(*f) for f in encoder + decoder)
    heads = 16 * 49 * 10 + 10 + 16 * 49 * 40 + 40
    model = create_model("squeeze-unet")
    assert count_params(model.predictor) == predictor == 1_181_296
    assert count_params(model) == predictor + heads


def test_erfnet_parameters_by_hand():
    def downsampler(i, o):  # 3x3 stride-2 conv to o - i channels (no bias), BN over o
        return 9 * i * (o - i) + 2 * o

    def non_bottleneck(c):  # two (3x1 with bias, 1x3 without, BN) pairs
        return 2 * (3 * c * c + c + 3 * c * c + 2 * c)

    def up(i, o, k):  # k x k transposed conv (no bias), BN
        return k * k * i * o + 2 * o

    encoder = downsampler(3, 16) + downsampler(16, 32) + 5 * non_bottleneck(32)
    encoder += downsampler(32, 64) + 8 * non_bottleneck(64)
    decoder = up(64, 32, 3) + 2 * non_bottleneck(32) + up(32, 16, 3) + 2 * non_bottleneck(16) + up(16, 16, 2)
    model = create_model("erfnet")
    assert count_params(model.predictor.encoder) == encoder
    assert count_params(model.predictor.decoder) == decoder
    assert encoder + decoder == 526_271


def test_squeeze_unet_encoder_returns_every_resolution():
    model = create_model("squeeze-unet")
    with torch.inference_mode():
        outs = model.predictor.encoder(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    assert [tuple(o.shape[1:]) for o in outs] == [(32, 64, 64), (64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]


@pytest.mark.parametrize("name", FAMILIES)
def test_width_scales_channels_and_parameters(name):
    counts = [count_params(build_student(name, width=w).predictor) for w in (0.25, 0.5, 1.0, 1.5)]
    assert counts == sorted(counts) and len(set(counts)) == 4
    # channels scale linearly, so parameters (mostly channels x channels) about quadratically
    assert 0.2 < counts[1] / counts[2] < 0.3
    assert [build_student(name, width=w).predictor.out_filters for w in (0.25, 0.5, 1.0, 1.5)] == [4, 8, 16, 24]
    assert count_params(build_student(name, width=0.5)) == PARAMS[f"{name}-0.5"][0]


def test_squeeze_unet_bottleneck_follows_width():
    model = build_student("squeeze-unet", width=0.5)
    with torch.inference_mode():
        outs = model.predictor.encoder(torch.rand(1, 3, 64, 64))
    assert tuple(outs[-1].shape[1:]) == (256, 4, 4)


@pytest.mark.parametrize("width", [0, -1.0, math.nan, math.inf, "1", True, None])
def test_bad_width_is_a_user_error(width):
    with pytest.raises(CompressbenchError, match="width must be a positive number"):
        build_student("lednet", width=width)


def test_registry_lists_every_student_and_width_variant():
    expected = set(FAMILIES) | {f"{name}-0.5" for name in FAMILIES}
    assert expected <= set(MODELS.names())
    assert STUDENTS.names() == FAMILIES
    for name in expected:
        assert MODELS.get(name).description.startswith("student, ")


def test_models_command_lists_students_with_parameters():
    result = CliRunner().invoke(app, ["models", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row["params"] for row in json.loads(result.stdout)["models"]}
    assert {name: rows[name] for name in PARAMS} == {name: counts[0] for name, counts in PARAMS.items()}
    assert rows["teacher"] == 14_215_368


def test_unknown_student_lists_the_known_ones():
    with pytest.raises(UnknownNameError) as info:
        build_student("mobilenet")
    assert str(info.value) == "unknown student 'mobilenet'; known: edanet, erfnet, esnet, lednet, squeeze-unet"


@pytest.mark.parametrize("name", FAMILIES)
def test_profile_layout_and_labels(name):
    model = create_model(name)
    label = "squeeze_unet" if name == "squeeze-unet" else "encoder_decoder"
    assert model.predictor.profile_label == label
    layout = layout_for(model)
    assert not layout.hourglass  # students must not be mistaken for the teacher's hourglass
    assert layout.blocks == [("encoder", "predictor.encoder"), ("decoder", "predictor.decoder"), (label, "predictor")]


@pytest.mark.parametrize("name", FAMILIES)
def test_predictor_traces_with_fx(name):
    torch.manual_seed(0)
    predictor = build_student(name, width=0.5).predictor.eval()
    randomize(predictor, 2)
    traced = symbolic_trace(predictor)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        assert torch.equal(traced(x), predictor(x))


@pytest.mark.parametrize("name", FAMILIES)
def test_saved_student_round_trip(tmp_path, name):
    config = DetectorConfig(num_kp=5, temperature=0.2)
    model = build_student(name, config, width=0.25).eval()
    randomize(model, 4)
    path = save_model(model, provenance_of(model), tmp_path / f"{name}.pt", metadata={"trained": "test"})
    rebuilt, provenance, metadata = read_model_file(path)
    assert provenance == Provenance(Base("student", {"student": name, "width": 0.25, "config": config.to_dict()}))
    assert metadata == {"trained": "test"}
    assert rebuilt.config == config
    assert rebuilt.predictor.width == 0.25
    assert student_builder_args(rebuilt) == {"student": name, "width": 0.25, "config": config.to_dict()}
    x = frames(1, seed=5)
    with torch.inference_mode():
        expected, got = model(x), rebuilt(x)
    assert tuple(got["value"].shape) == (1, 5, 2)
    for key in ("value", "jacobian", "heatmap"):
        assert torch.equal(expected[key], got[key])


def test_saved_student_loads_by_path_and_with_explicit_builder_args(tmp_path):
    model = build_student("lednet", width=0.25).eval()
    randomize(model, 6)
    args = {"student": "lednet", "width": 0.25, "config": DetectorConfig().to_dict()}
    path = save_model(model, Provenance(Base("student", args)), tmp_path / "lednet.pt")
    rebuilt = load_model(path)
    x = frames(1, seed=7)
    with torch.inference_mode():
        assert torch.equal(model(x)["value"], rebuilt(x)["value"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"student": "nope", "width": 1.0}, "unknown student 'nope'; known: edanet, erfnet"),
        ({"student": "lednet", "depth": 3}, "unknown builder argument"),
        ({"width": 1.0}, "no 'student' name"),
        ({"student": "lednet", "config": {"kernels": 3}}, "cannot rebuild base 'student'"),
    ],
)
def test_saved_student_with_bad_builder_args_is_a_clear_error(tmp_path, args, message):
    path = save_model(build_student("lednet", width=0.25), Provenance(Base("student", args)), tmp_path / "bad.pt")
    with pytest.raises(CompressbenchError, match=message):
        read_model_file(path)


def test_saved_student_with_other_width_does_not_fit(tmp_path):
    path = save_model(
        build_student("erfnet", width=0.5), Provenance(Base("student", {"student": "erfnet", "width": 1.0})), tmp_path / "w.pt"
    )
    with pytest.raises(CompressbenchError, match="does not fit the model"):
        read_model_file(path)


def test_builder_args_need_a_student():
    with pytest.raises(ValueError, match="not built by build_student"):
        student_builder_args(build_teacher(DetectorConfig(block_expansion=8, max_features=64, num_blocks=3)))
