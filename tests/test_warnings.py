"""Third-party warnings: counted while a command runs, one line per kind at the end."""

import warnings

import pytest

from compressbench.warnings import collected_warnings


def test_known_warnings_are_counted_and_explained_once():
    lines = []
    with collected_warnings(lines.append):
        for _ in range(3):
            warnings.warn("TypedStorage is deprecated. It will be removed in the future", UserWarning, stacklevel=1)
        warnings.warn("something new\n  generated code line", RuntimeWarning, stacklevel=1)
        warnings.warn("something new\n  generated code line", RuntimeWarning, stacklevel=1)
        warnings.warn("a library's own deprecation", DeprecationWarning, stacklevel=1)  # hidden, as Python hides it
    assert lines == [
        "note: PyTorch warned 3 times about TypedStorage being deprecated; harmless because torch's own loader uses it "
        "while reading a saved file; nothing in compressbench calls it",
        "note: RuntimeWarning: something new (2 times)",
    ]


def test_summary_is_printed_when_the_command_fails():
    lines = []
    with pytest.raises(ValueError), collected_warnings(lines.append):
        warnings.warn("All inputs of this cat operator must share the same quantization parameters.", UserWarning, stacklevel=1)
        raise ValueError
    assert len(lines) == 1 and lines[0].startswith("note: PyTorch warned once about int8 concatenations")
