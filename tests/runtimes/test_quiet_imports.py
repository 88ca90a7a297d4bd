"""Importing ExecuTorch (which imports torchao) prints none of the log lines a user can do nothing
about, and only those are dropped: the same loggers' other lines still show."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from compressbench.warnings import quiet_log_lines

NOISE = ("Failed to load", "_pytree", "register_constant", "is an Enum subclass")


def test_the_executorch_import_path_prints_no_torchao_log_lines():
    pytest.importorskip("executorch")
    code = (
        "from compressbench.runtimes.executorch_runtime import executorch_version\n"
        "executorch_version()\n"
        "import executorch.exir, executorch.runtime\n"  # what export, the runner and attribution import
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    noisy = [line for line in result.stderr.splitlines() if any(word in line for word in NOISE)]
    assert noisy == [], noisy


def test_only_the_known_lines_are_dropped(caplog):
    with caplog.at_level(logging.WARNING), quiet_log_lines():
        logging.getLogger("torchao").warning("Failed to load /x/site-packages/torchao/_C_mxfp8.so: Could not load this library")
        logging.getLogger("torch.utils._pytree").warning("%s is an Enum subclass and is now natively supported by torch.compile", "E")
        logging.getLogger("torchao").warning("Skipping import of cpp extensions due to incompatible torch version")
        logging.getLogger("torch.utils._pytree").warning("another pytree warning")
    assert [r.getMessage() for r in caplog.records] == [
        "Skipping import of cpp extensions due to incompatible torch version",
        "another pytree warning",
    ]
    assert not logging.getLogger("torchao").filters  # the filters live only inside the block
