"""Rendering at fixed widths: golden snapshots of one small comparison record (80 and 140 columns,
plain text for pipes and files, Markdown), and the per-column number formats."""

from __future__ import annotations

import pandas as pd

from compressbench.report.comparison_tables import comparison_sections
from compressbench.report.render import (
    Section,
    columns_of,
    format_column,
    format_value,
    plural,
    render_markdown,
    render_plain,
    render_terminal,
)

ENV = {
    "runtime": "torch", "batch": 1, "input_shape": [1, 3, 64, 64], "threads": 1, "repeats": 30, "warmup": 10,
    "cpu": "Example CPU", "torch": "2.13.0", "eval_frames": 32,
}  # fmt: skip


def _row(variant, method, latency, speedup, akd, params, macs, int8=False):
    return {
        "variant": variant, "method": method, "params": params, "macs": macs, "macs_int8": int8, "size_mb": params * 4e-6,
        "peak_mem_mb": 0.5, "latency_ms": latency, "latency_p10": latency * 0.9, "latency_p90": latency * 1.1,
        "speedup": speedup, "akd_px": akd, "akd_px_ci95": akd / 10, "jacobian_error": akd / 100,
    }  # fmt: skip


RECORD = {
    "rows": [
        _row("teacher", "none", 461.1, 1.0, 0.0, 14_215_368, 19_390_000_000),
        _row("teacher+exact", "exact", 48.126, 9.58, 0.00002, 14_214_000, 5_129_048_000),
        _row("teacher+exact+quantize", "exact,quantize", 30.5, 15.1, 0.417, 14_214_000, 5_129_048_000, int8=True),
    ],
    "env": ENV,
    "notes": [],
    "stages": [{"method": "exact", "options": {"fold_bn": True}, "report": {
        "params_before": 14_215_368, "rewrites": [{"rewrite": "fold_bn", "batchnorms_folded": 10.0}, {"rewrite": "anti_alias", "batchnorms_folded": None}],
    }}],
}  # fmt: skip

AT_80 = """\
Comparison
variant                 latency_ms  p10_ms  p90_ms  speedup  akd_px  akd_ci95
─────────────────────────────────────────────────────────────────────────────
teacher                      461.1   415.0   507.2     1.00   0.000     0.000
teacher+exact                 48.1    43.3    52.9     9.58   0.000     0.000
teacher+exact+quantize        30.5    27.4    33.6    15.10   0.417     0.042

Comparison (continued)
variant                  jac_err      params            macs  int8  size_mb
───────────────────────────────────────────────────────────────────────────
teacher                        0  14,215,368  19,390,000,000  no      56.86
teacher+exact           2.00e-07  14,214,000   5,129,048,000  no      56.86
teacher+exact+quantize  4.17e-03  14,214,000   5,129,048,000  yes     56.86

Comparison (continued)
variant                 peak_mb  method
───────────────────────────────────────────────
teacher                    0.50  none
teacher+exact              0.50  exact
teacher+exact+quantize     0.50  exact,quantize

torch fp32, batch 1, input (1, 3, 64, 64), 1 thread, median of 30 interleaved
runs after 10 warm-up rounds; Example CPU, torch 2.13.0
speedup = teacher median / row median from the same interleaved run
(speedup_vs_eager_fp32 in the JSON: against the teacher in eager fp32, same
run); akd_px and jac_err against the teacher on 32 held-out frames; akd_ci95:
half-width of akd_px's 95% interval over those frames
macs: fvcore, per frame; int8: the MACs run in 8-bit integers; size_mb:
serialized state dict (10^6 bytes); peak_mb: peak CPU allocation of one
inference (torch profiler); jac_err: mean |J - J_teacher|

Stage 1: exact
item                value
─────────────────────────
params_before  14,215,368

options: fold_bn=True

Stage 1: exact: rewrites
rewrite     batchnorms_folded
─────────────────────────────
fold_bn                    10
anti_alias                  -
"""

AT_140 = """\
Comparison
variant                 latency_ms  p10_ms  p90_ms  speedup  akd_px  akd_ci95   jac_err      params            macs  int8  size_mb  peak_mb
───────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────
teacher                      461.1   415.0   507.2     1.00   0.000     0.000         0  14,215,368  19,390,000,000  no      56.86     0.50
teacher+exact                 48.1    43.3    52.9     9.58   0.000     0.000  2.00e-07  14,214,000   5,129,048,000  no      56.86     0.50
teacher+exact+quantize        30.5    27.4    33.6    15.10   0.417     0.042  4.17e-03  14,214,000   5,129,048,000  yes     56.86     0.50

Comparison (continued)
variant                 method
──────────────────────────────────────
teacher                 none
teacher+exact           exact
teacher+exact+quantize  exact,quantize

torch fp32, batch 1, input (1, 3, 64, 64), 1 thread, median of 30 interleaved runs after 10 warm-up rounds; Example CPU, torch 2.13.0
speedup = teacher median / row median from the same interleaved run (speedup_vs_eager_fp32 in the JSON: against the teacher in eager fp32,
same run); akd_px and jac_err against the teacher on 32 held-out frames; akd_ci95: half-width of akd_px's 95% interval over those frames
macs: fvcore, per frame; int8: the MACs run in 8-bit integers; size_mb: serialized state dict (10^6 bytes); peak_mb: peak CPU allocation of
one inference (torch profiler); jac_err: mean |J - J_teacher|

Stage 1: exact
item                value
─────────────────────────
params_before  14,215,368

options: fold_bn=True

Stage 1: exact: rewrites
rewrite     batchnorms_folded
─────────────────────────────
fold_bn                    10
anti_alias                  -
"""

PLAIN = """\
Comparison
variant                   latency_ms    p10_ms    p90_ms    speedup    akd_px    akd_ci95    jac_err      params            macs  int8      size_mb    peak_mb  method
----------------------  ------------  --------  --------  ---------  --------  ----------  ---------  ----------  --------------  ------  ---------  ---------  --------------
teacher                        461.1     415.0     507.2       1.00     0.000       0.000          0  14,215,368  19,390,000,000  no          56.86       0.50  none
teacher+exact                   48.1      43.3      52.9       9.58     0.000       0.000   2.00e-07  14,214,000   5,129,048,000  no          56.86       0.50  exact
teacher+exact+quantize          30.5      27.4      33.6      15.10     0.417       0.042   4.17e-03  14,214,000   5,129,048,000  yes         56.86       0.50  exact,quantize
torch fp32, batch 1, input (1, 3, 64, 64), 1 thread, median of 30 interleaved runs after 10 warm-up rounds; Example CPU, torch 2.13.0
speedup = teacher median / row median from the same interleaved run (speedup_vs_eager_fp32 in the JSON: against the teacher in eager fp32, same run); akd_px and jac_err against the teacher on 32 held-out frames; akd_ci95: half-width of akd_px's 95% interval over those frames
macs: fvcore, per frame; int8: the MACs run in 8-bit integers; size_mb: serialized state dict (10^6 bytes); peak_mb: peak CPU allocation of one inference (torch profiler); jac_err: mean |J - J_teacher|

Stage 1: exact
item                value
-------------  ----------
params_before  14,215,368
options: fold_bn=True

Stage 1: exact: rewrites
rewrite       batchnorms_folded
----------  -------------------
fold_bn                      10
anti_alias                    -
"""

MARKDOWN = """\
### Comparison

| variant                |   latency_ms |   p10_ms |   p90_ms |   speedup |   akd_px |   akd_ci95 |   jac_err |     params |           macs | int8   |   size_mb |   peak_mb | method         |
|:-----------------------|-------------:|---------:|---------:|----------:|---------:|-----------:|----------:|-----------:|---------------:|:-------|----------:|----------:|:---------------|
| teacher                |        461.1 |    415.0 |    507.2 |      1.00 |    0.000 |      0.000 |         0 | 14,215,368 | 19,390,000,000 | no     |     56.86 |      0.50 | none           |
| teacher+exact          |         48.1 |     43.3 |     52.9 |      9.58 |    0.000 |      0.000 |  2.00e-07 | 14,214,000 |  5,129,048,000 | no     |     56.86 |      0.50 | exact          |
| teacher+exact+quantize |         30.5 |     27.4 |     33.6 |     15.10 |    0.417 |      0.042 |  4.17e-03 | 14,214,000 |  5,129,048,000 | yes    |     56.86 |      0.50 | exact,quantize |

- torch fp32, batch 1, input (1, 3, 64, 64), 1 thread, median of 30 interleaved runs after 10 warm-up rounds; Example CPU, torch 2.13.0
- speedup = teacher median / row median from the same interleaved run (speedup_vs_eager_fp32 in the JSON: against the teacher in eager fp32, same run); akd_px and jac_err against the teacher on 32 held-out frames; akd_ci95: half-width of akd_px's 95% interval over those frames
- macs: fvcore, per frame; int8: the MACs run in 8-bit integers; size_mb: serialized state dict (10^6 bytes); peak_mb: peak CPU allocation of one inference (torch profiler); jac_err: mean |J - J_teacher|

### Stage 1: exact

| item          |      value |
|:--------------|-----------:|
| params_before | 14,215,368 |

- options: fold_bn=True

### Stage 1: exact: rewrites

| rewrite    |   batchnorms_folded |
|:-----------|--------------------:|
| fold_bn    |                  10 |
| anti_alias |                   - |
"""


def sections():
    return comparison_sections(RECORD)


def test_terminal_80_columns():
    text = render_terminal(sections(), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text == AT_80


def test_terminal_140_columns():
    text = render_terminal(sections(), 140)
    assert max(len(line) for line in text.splitlines()) <= 140
    assert text == AT_140


def test_plain_text_has_no_padding():
    text = render_plain(sections())
    assert all(line == line.rstrip() for line in text.splitlines())
    assert text == PLAIN


def test_markdown_numbers_right_aligned():
    assert render_markdown(sections()) == MARKDOWN


def test_one_precision_per_column():
    assert format_column("ms", [461.1, 48.126, None]).cells == ["461.1", "48.1", "-"]
    assert format_column("n", [10.0, 1_234_567.0]).cells == ["10", "1,234,567"]
    assert format_column("err", [0.0, 2.5e-8, 2.44e-4]).cells == ["0", "2.50e-08", "2.44e-04"]
    assert format_column("name", ["a", "b"]).numeric is False
    assert format_column("slowdown", ["+3.4%", "-12.0%"]).numeric is True
    # columns in one unit share their decimals: 9.015 ms is not shown beside 10.95 ms
    same_unit = columns_of(pd.DataFrame({"latency_ms": [9.015], "p90_ms": [10.95], "speedup": [1.2345]}))
    assert [c.cells for c in same_unit] == [["9.02"], ["10.95"], ["1.234"]]


def test_values_and_plurals():
    assert format_value({"a": 0.5, "b": [1, 2]}) == "a 0.500, b 1, 2"
    assert format_value(True) == "yes" and format_value(None) == "-" and format_value(80928) == "80,928"
    assert plural(1, "thread") == "1 thread" and plural(2, "thread") == "2 threads"
    assert plural(1, "entry", "entries") == "1 entry" and plural(0, "entry", "entries") == "0 entries"


def test_names_stay_whole_when_columns_move():
    frame = pd.DataFrame({"a_rather_long_variant_name": ["squeeze-unet-0.25+quantize"], **{f"col{i}": [1.5] for i in range(12)}})
    text = render_terminal([Section("Wide", frame)], 80)
    assert text.count("squeeze-unet-0.25+quantize") == 2 and "(continued)" in text
    assert "…" not in text


def test_long_text_wraps_beside_the_numbers_when_it_can():
    frame = pd.DataFrame(
        {"name": ["lednet", "teacher"], "params": [845_321, 14_215_368], "latency_ms_median_all": [3.5, 40.25],
         "description": ["student, LEDNet: split-shuffle non-bottleneck units, attention-pyramid decoder, no skips", "FOMM"]}
    )  # fmt: skip
    text = render_terminal([Section("Models", frame)], 80)
    # at its usual 40 characters the description would not fit beside the numbers; narrower, it does
    assert "(continued)" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert text.splitlines()[3].startswith("lednet      845,321                   3.50  student, LEDNet:")
