"""Suite files: parsing, defaults, optional entries and every error."""

from __future__ import annotations

import pytest

from compressbench.errors import CompressbenchError
from compressbench.suite import MEASURE_DEFAULTS, VariantSpec, read_suite


def write(tmp_path, text):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def test_committed_suite_parses():
    suite = read_suite("benchmarks/suite.toml")
    names = [v.name for v in suite.variants]
    assert names[0] == "teacher"
    assert {"exact", "prune-0.3", "prune-0.5", "prune-0.7", "quantize", "asym-r0.5", "dsconv-m4"} <= set(names)
    assert suite.get("prune-0.5").options == {"ratio": 0.5}
    assert suite.measure["threads"] == 2 and suite.measure["batch"] == 1


def test_defaults_and_optional_entries(tmp_path):
    suite = read_suite(write(tmp_path, '[[variant]]\nname = "t"\n[[variant]]\nname = "s"\nmodel = "missing.pt"\noptional = true\n'))
    assert [v.name for v in suite.variants] == ["t"] and suite.skipped == {"s": "model file missing.pt does not exist"}
    assert suite.measure == MEASURE_DEFAULTS
    assert suite.variants[0] == VariantSpec(name="t")


UNAVAILABLE = '[[variant]]\nname = "t"\n[[variant]]\nname = "q"\nmethod = "exact,quantize"\nset = { quantize = { backend = "onnxruntime" } }\n'


@pytest.fixture
def no_onnxruntime(monkeypatch):
    from compressbench.compression.quantize.backends import BACKENDS

    def missing():
        raise CompressbenchError("quantize: backend onnxruntime needs onnxruntime")

    monkeypatch.setattr(BACKENDS.get("onnxruntime"), "check_available", missing)


def test_optional_variant_a_backend_cannot_run_is_skipped_with_the_reason(tmp_path, no_onnxruntime):
    suite = read_suite(write(tmp_path, UNAVAILABLE + "optional = true\n"))
    assert [v.name for v in suite.variants] == ["t"]
    assert suite.skipped == {"q": "quantize: backend onnxruntime needs onnxruntime"}


def test_required_variant_a_backend_cannot_run_is_refused_before_any_work(tmp_path, no_onnxruntime):
    with pytest.raises(CompressbenchError, match=r"variant 'q' cannot run here: quantize: backend onnxruntime needs onnxruntime \(or mark it optional = true\)"):
        read_suite(write(tmp_path, UNAVAILABLE))


def test_available_backends_and_codebooks_are_kept(tmp_path):
    text = UNAVAILABLE + '[[variant]]\nname = "w"\nmethod = "quantize"\noptions = { weights_only = true, backend = "pt2e" }\noptional = true\n'
    suite = read_suite(write(tmp_path, text))
    assert [v.name for v in suite.variants] == ["t", "q", "w"] and suite.skipped == {}


def test_spec_key_is_stable_and_sensitive():
    a = VariantSpec("p", method="prune", options={"ratio": 0.5})
    assert a.key() == VariantSpec("p", method="prune", options={"ratio": 0.5}).key()
    assert a.key() != VariantSpec("p", method="prune", options={"ratio": 0.3}).key()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[[variant]\nname=", "not valid TOML"),
        ("[measure]\nthreads = 2\n", "lists no [[variant]] entries"),
        ('[measure]\nspeed = 1\n[[variant]]\nname = "t"\n', "unknown [measure] key(s) speed"),
        ('[[variant]]\nmodel = "teacher"\n', "variant #1 has no name"),
        ('[[variant]]\nname = "t"\ncolour = "red"\n', "unknown key(s) colour"),
        ('[[variant]]\nname = "t"\n[[variant]]\nname = "t"\n', "appears twice"),
        ('[[variant]]\nname = "p"\nmethod = "prune"\noptions = { ratio = "half" }\n', "variant 'p': prune: option ratio expects float, got 'half'"),
        ('[[variant]]\nname = "q"\nmethod = "quantize"\noptions = { backend = "tflite" }\n', "variant 'q': quantize: unknown backend 'tflite'"),
    ],
)
def test_bad_suites(tmp_path, text, message):
    with pytest.raises(CompressbenchError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        read_suite(write(tmp_path, text))


def test_missing_suite_and_unknown_variant(tmp_path):
    with pytest.raises(CompressbenchError, match="does not exist"):
        read_suite(tmp_path / "none.toml")
    suite = read_suite(write(tmp_path, '[[variant]]\nname = "t"\n'))
    with pytest.raises(CompressbenchError, match="unknown variant 'x'.*known: t"):
        suite.get("x")


def test_runtime_and_precision_measure_keys(tmp_path):
    suite = read_suite(
        write(tmp_path, '[measure]\nruntime = "openvino"\nprecision = "bf16"\n[[variant]]\nname = "t"\n')
    )
    assert (suite.measure["runtime"], suite.measure["precision"]) == ("openvino", "bf16")
    assert (MEASURE_DEFAULTS["runtime"], MEASURE_DEFAULTS["precision"]) == ("torch", "fp32")


@pytest.mark.parametrize("measure, message", [
    ('runtime = "tflite"', "unknown runtime 'tflite'; known: executorch, onnxruntime, openvino, torch"),
    ('precision = "fp16"', "unknown precision 'fp16'; known: fp32, bf16, int8"),
])  # fmt: skip
def test_bench_rejects_a_bad_runtime_or_precision_before_building(tmp_path, measure, message):
    from compressbench.bench import run_suite

    path = write(tmp_path, f'[measure]\n{measure}\n[[variant]]\nname = "t"\nmodel = "missing.pt"\n')
    with pytest.raises(CompressbenchError, match=f"suite {path}: {message}"):
        run_suite(read_suite(path), show_progress=False)
