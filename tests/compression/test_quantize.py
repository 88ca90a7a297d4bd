"""quantize: static int8 back-ends (fx, onnxruntime, pt2e) on the reduced teacher."""

from __future__ import annotations

import builtins

import pytest
import torch
from torch import nn

from compressbench.compression import CompressionContext, get_method
from compressbench.compression.quantize import BACKENDS, DEFAULT_BACKEND
from compressbench.errors import CompressbenchError
from compressbench.provenance import derive, load_model, save_variant
from compressbench.runtimes.onnx import OnnxModule
from tests.compression.swap_helpers import REDUCED, frames, lively_teacher

SIZE = 64
CALIB = 4
TOP_LEVEL = {"down", "predictor", "kp", "softmax", "soft_argmax", "jacobian", "jacobian_pool"}
# A broken quantizer (wrong scales, swapped channels) moves keypoints by ~0.1-1 in [-1, 1] units;
# int8 rounding on this model moves them by ~0.003.
MAX_MEAN_VALUE_DIFF = 0.02
MAX_RELATIVE_PART_ERROR = 0.05


def calibration(count: int) -> torch.Tensor:
    return frames(count, SIZE, seed=5)


CONTEXT = CompressionContext(calibration_frames=calibration, input_shape=(1, 3, SIZE, SIZE), show_progress=False)


def quantize(model: nn.Module, **options):
    resolved = get_method("quantize").resolve({"calib": CALIB, **options})
    return derive(model, "quantize", [resolved], CONTEXT)[-1]


def outputs(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return model(images)


@pytest.fixture(scope="module")
def teacher() -> nn.Module:
    return lively_teacher()


@pytest.fixture(scope="module")
def held_out() -> torch.Tensor:
    return frames(3, SIZE, seed=11)


@pytest.fixture(scope="module")
def fx_variant(teacher):
    return quantize(teacher, parts="predictor,kp,jacobian")  # default backend: fx


@pytest.fixture(scope="module")
def ort_variant(teacher):
    return quantize(teacher, backend="onnxruntime")  # default parts: hourglass + jacobian head


def assert_close_to_teacher(variant, teacher, images):
    want, got = outputs(teacher, images), outputs(variant.module, images)
    assert got["value"].shape == want["value"].shape == (3, 10, 2)
    assert got["jacobian"].shape == (3, 10, 2, 2)
    assert (got["value"] - want["value"]).abs().mean() < MAX_MEAN_VALUE_DIFF
    assert (got["jacobian"] - want["jacobian"]).abs().mean() < MAX_MEAN_VALUE_DIFF
    assert not torch.equal(got["value"], want["value"])  # it really runs a different (int8) model


def test_defaults_and_registered_backends():
    assert BACKENDS.names() == ["fx", "onnxruntime", "pt2e"]
    defaults = get_method("quantize").resolve({})
    assert defaults == {"backend": DEFAULT_BACKEND, "calib": 32, "parts": "predictor,jacobian", "weights_only": False}
    assert DEFAULT_BACKEND == "fx"


def test_fx_is_close_keeps_attributes_and_is_int8(fx_variant, teacher, held_out):
    assert_close_to_teacher(fx_variant, teacher, held_out)
    module = fx_variant.module
    assert [name for name, _ in module.named_children()] == [name for name, _ in teacher.named_children()]
    assert {name for name, _ in module.named_children()} == TOP_LEVEL
    assert fx_variant.int8
    assert isinstance(module.predictor, torch.fx.GraphModule)
    assert isinstance(module.down, type(teacher.down)) and isinstance(module.softmax, type(teacher.softmax))
    int8_convs = [m for m in module.modules() if type(m).__module__.startswith("torch.ao.nn.intrinsic.quantized")
                  or type(m).__module__.startswith("torch.ao.nn.quantized")]
    assert len([m for m in int8_convs if "Conv" in type(m).__name__]) == 6 + 2  # hourglass + both heads
    report = fx_variant.stages[-1].report
    assert report["quantized_parts"] == ["predictor", "kp", "jacobian"]
    assert report["calibration_frames"] == CALIB
    assert all(0 < e < MAX_RELATIVE_PART_ERROR for e in report["relative_error"].values())
    assert report["size_bytes_after"] < 0.35 * report["size_bytes_before"]


def test_fx_hourglass_concatenates_in_float_without_warnings(fx_variant, held_out):
    """The skip concatenations join int8 tensors of different scales; they are rewritten to join the
    dequantized tensors, so torch's 'must share the same quantization parameters' warning (printed
    on every forward) has no cause, and the result equals the int8 cat of the same inputs dequantized."""
    import warnings

    from compressbench.compression.quantize.fx import _concatenate_in_float

    predictor = fx_variant.module.predictor
    cats = [n for n in predictor.graph.nodes if n.target is torch.cat]
    assert len(cats) == REDUCED.num_blocks  # one per skip connection
    assert all(all(t.op == "call_method" and t.target == "dequantize" for t in n.args[0]) for n in cats)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outputs(fx_variant.module, held_out)
    assert not [w for w in caught if "quantization parameters" in str(w.message)]
    # the rewrite on a graph with an int8 cat feeding a dequantize: same float values as before
    a = torch.quantize_per_tensor(torch.rand(1, 2, 3, 3), 0.01, 3, torch.quint8)
    b = torch.quantize_per_tensor(torch.rand(1, 2, 3, 3), 0.01, 3, torch.quint8)  # shared scale: int8 cat is exact
    graph_module = torch.fx.symbolic_trace(Concat())
    expected = graph_module(a, b)
    rewritten = _concatenate_in_float(graph_module)
    assert torch.equal(rewritten(a, b), expected)
    assert [n.target for n in rewritten.graph.nodes if n.op == "call_method"] == ["dequantize", "dequantize"]


class Concat(nn.Module):
    def forward(self, a, b):
        return torch.cat([a, b], dim=1).dequantize()


def test_apply_does_not_mutate_the_input(teacher, held_out):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    quantize(teacher, backend="fx", parts="kp")
    assert isinstance(teacher.kp, nn.Conv2d)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_parts_option_limits_what_is_quantized(teacher):
    variant = quantize(teacher, backend="fx", parts="jacobian, predictor", calib=2)
    assert isinstance(variant.module.kp, nn.Conv2d)
    assert isinstance(variant.module.jacobian, torch.fx.GraphModule)
    assert variant.stages[-1].report["quantized_parts"] == ["predictor", "jacobian"]


def test_fx_fuses_conv_and_relu_after_batchnorm_folding(teacher, held_out, tmp_path):
    # exact folds each BatchNorm into its conv and leaves an nn.Identity between conv and ReLU
    chain = ["exact", "quantize"]
    quantize_options = {"backend": "fx", "parts": "predictor", "calib": 2}
    options = [get_method("exact").resolve({}), get_method("quantize").resolve(quantize_options)]
    variant = derive(teacher, chain, options, CONTEXT)[-1]
    fused = [m for m in variant.module.predictor.modules() if type(m).__name__ == "ConvReLU2d"]
    assert len(fused) == 6
    reloaded = load_model(save_variant(variant, tmp_path / "exact-fx.pt"))
    want, got = outputs(variant.module, held_out), outputs(reloaded, held_out)
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_fx_activation_range_follows_vnni_and_is_saved(monkeypatch, teacher):
    import compressbench.compression.quantize.fx as fx_backend

    scales = {}
    for vnni in (False, True):
        monkeypatch.setattr(fx_backend, "full_range_activations", lambda vnni=vnni: vnni)
        variant = quantize(teacher, parts="kp", calib=2)
        assert variant.stages[-1].structure["parts"]["kp"]["reduce_range"] is not vnni
        scales[vnni] = variant.module.kp.get_submodule("0").scale
    # 7-bit activations need about twice the step of 8-bit ones for the same observed range
    assert 1.5 < scales[False] / scales[True] < 2.5


def test_fx_save_load_round_trip_is_identical(fx_variant, held_out, tmp_path):
    path = save_variant(fx_variant, tmp_path / "fx.pt")
    payload = torch.load(path, weights_only=True)  # quantized tensors load without unpickling code
    assert any(t.is_quantized for t in payload["state_dict"].values())
    reloaded = load_model(path)
    want, got = outputs(fx_variant.module, held_out), outputs(reloaded, held_out)
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_onnxruntime_is_close_and_round_trips(ort_variant, teacher, held_out, tmp_path):
    assert_close_to_teacher(ort_variant, teacher, held_out)
    module = ort_variant.module
    assert [name for name, _ in module.named_children()] == [name for name, _ in teacher.named_children()]
    assert all(isinstance(getattr(module, p), OnnxModule) for p in ("predictor", "jacobian"))
    assert isinstance(module.kp, nn.Conv2d)  # feeds the temperature-0.1 softmax: float by default
    assert ort_variant.int8
    assert ort_variant.stages[-1].report["float_parts"] == ["down", "kp", "softmax", "soft_argmax", "jacobian_pool"]
    structure = ort_variant.stages[-1].structure["parts"]
    assert structure["predictor"]["onnx_bytes"] == module.predictor.onnx_bytes.numel()
    reloaded = load_model(save_variant(ort_variant, tmp_path / "ort.pt"))
    want, got = outputs(module, held_out), outputs(reloaded, held_out)
    assert all(torch.equal(want[k], got[k]) for k in want)


@pytest.mark.slow  # torch.compile of the int8 graph, twice (applied and reloaded)
def test_pt2e_is_close_and_round_trips(teacher, held_out, tmp_path):
    pytest.importorskip("torchao")
    variant = quantize(teacher, backend="pt2e", parts="kp", calib=4)
    assert_close_to_teacher(variant, teacher, held_out)
    assert variant.stages[-1].structure["parts"]["kp"]["activation_qparams"]
    reloaded = load_model(save_variant(variant, tmp_path / "pt2e.pt"))
    want, got = outputs(variant.module, held_out), outputs(reloaded, held_out)
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_pt2e_without_torchao_names_the_package(monkeypatch, teacher):
    real_import = builtins.__import__

    def no_pt2e(name, *args, **kwargs):
        if name.startswith("torchao") or name.startswith("torch.ao.quantization.quantize_pt2e"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pt2e)
    with pytest.raises(CompressbenchError, match="pip install torchao"):
        quantize(teacher, backend="pt2e", calib=1)


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(CompressbenchError, match="fx, onnxruntime, pt2e"):
        get_method("quantize").resolve({"backend": "tensorrt"})


@pytest.mark.parametrize("calib", [0, -3])
def test_calib_must_be_positive(calib):
    with pytest.raises(CompressbenchError, match="calib"):
        get_method("quantize").resolve({"calib": calib})


def test_unknown_part_is_an_error():
    with pytest.raises(CompressbenchError, match="choose from: down, predictor, kp, jacobian"):
        get_method("quantize").resolve({"parts": "predictor,softmax"})


def test_missing_engine_is_an_error(monkeypatch, teacher):
    # supported_engines is a read-only property of torch.backends.quantized's module class
    monkeypatch.setattr(type(torch.backends.quantized), "supported_engines", ["qnnpack", "none"])
    with pytest.raises(CompressbenchError, match="needs the quantized engine 'x86'.*qnnpack"):
        quantize(teacher, backend="fx", calib=1)


def test_static_quantization_needs_frames(teacher):
    resolved = get_method("quantize").resolve({"backend": "fx"})
    with pytest.raises(CompressbenchError, match="needs frames"):
        derive(teacher, "quantize", [resolved], CompressionContext(show_progress=False))


def test_quantize_reports_sizes_by_the_one_size_definition():
    """size_bytes_before/after are compressbench's one size: the bytes of the saved state dict."""
    import io

    from compressbench.profiling.counting import size_bytes, size_mb

    conv = nn.Conv2d(4, 8, 3)
    buffer = io.BytesIO()
    torch.save(conv.state_dict(), buffer)
    assert size_bytes(conv) == buffer.tell() > (8 * 4 * 9 + 8) * 4  # the tensors, plus the container
    assert size_mb(conv) == size_bytes(conv) / 1e6


def test_fx_quantizes_a_saved_student_with_bias_free_convs_and_round_trips(held_out, tmp_path):
    from compressbench.models.students.families import build_student
    from compressbench.provenance import Base, provenance_of, save_model

    torch.manual_seed(0)
    student = build_student("erfnet", width=0.25).eval()  # a width no registered name has
    assert any(isinstance(m, nn.Conv2d) and m.bias is None for m in student.modules())
    float_path = save_model(student, provenance_of(student), tmp_path / "student.pt")
    start = provenance_of(str(float_path), student)
    assert start.base == Base("student", {"student": "erfnet", "width": 0.25, "config": student.config.to_dict()})
    resolved = get_method("quantize").resolve({"calib": CALIB})
    variant = derive(load_model(float_path), "quantize", [resolved], CONTEXT, provenance=start)[-1]
    assert all(isinstance(v, torch.Tensor) for v in variant.module.state_dict().values())
    want = outputs(student, held_out)
    got = outputs(variant.module, held_out)
    assert (got["value"] - want["value"]).abs().mean() < MAX_MEAN_VALUE_DIFF
    reloaded = load_model(save_variant(variant, tmp_path / "student-int8.pt"))
    again = outputs(reloaded, held_out)
    assert all(torch.equal(got[k], again[k]) for k in got)
