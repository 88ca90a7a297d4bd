"""Shared runtime helpers: what a record says about torch's OpenMP wait policy."""

from __future__ import annotations

import pytest

from compressbench.runtimes.base import openmp_policy_note, openmp_wait_policy


@pytest.mark.parametrize("value", ["PASSIVE", "passive"])
def test_passive_policy_is_noted_as_slowing_the_eager_baseline(monkeypatch, value):
    monkeypatch.setenv("OMP_WAIT_POLICY", value)
    assert openmp_wait_policy() == value
    note = openmp_policy_note()
    assert note.startswith("OMP_WAIT_POLICY=PASSIVE slows eager PyTorch itself") and "\n" not in note


@pytest.mark.parametrize("value", [None, "ACTIVE"])
def test_default_and_active_policies_need_no_note(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", value)
    assert openmp_wait_policy() == (value or "unset")
    assert openmp_policy_note() is None
