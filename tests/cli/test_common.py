"""Shared CLI vocabulary: the suite given either way, results vs model paths."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from compressbench.cli import app
from compressbench.cli.common import DEFAULT_SUITE, check_model_path, check_results_path, suite_path
from compressbench.errors import CompressbenchError


def test_suite_positional_or_option():
    assert suite_path(Path("a.toml"), None) == Path("a.toml") == suite_path(None, Path("a.toml"))
    assert suite_path(None, None) == DEFAULT_SUITE
    with pytest.raises(CompressbenchError, match="two suites"):
        suite_path(Path("a.toml"), Path("b.toml"))


def test_results_and_model_paths_do_not_mix():
    check_results_path(Path("r.json"))
    check_model_path(Path("m.pt"))
    with pytest.raises(CompressbenchError, match="--output small.pt is for results"):
        check_results_path(Path("small.pt"))
    with pytest.raises(CompressbenchError, match="--out r.md is the saved model"):
        check_model_path(Path("r.md"))


@pytest.mark.parametrize("command", [["bench", "s.toml"], ["baseline", "--suite", "s.toml"]])
def test_bench_and_baseline_refuse_a_model_file_as_results(command):
    result = CliRunner().invoke(app, [*command, "-o", "x.pt"])
    assert result.exit_code == 2 and "is for results" in result.stderr
