"""Checks on the files a command is given to read, before it reads them: one clear error each.

``Path.is_file()`` is False for a missing path, a folder, a dangling or looping link, a FIFO and a
device alike; :func:`check_input_file` says which it is (a FIFO is refused before anything opens it,
since opening one for reading waits for a writer) and that a file exists but cannot be read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from compressbench.errors import CompressbenchError


def input_file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file (a short phrase after its name), or None when it can."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "is a broken link" if path.is_symlink() else "does not exist"
    except NotADirectoryError:
        return "does not exist (a part of its path is a file)"
    except OSError as exc:  # a link loop, a name too long
        return f"cannot be opened ({exc.strerror or type(exc).__name__})"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a pipe, socket or device)"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def check_input_file(path: str | Path, what: str, hint: str = "") -> Path:
    """``path`` as a Path when it is a readable regular file; else one error: ``{what} {path} <why>``
    followed by ``hint`` (what to give instead), e.g. ``"config file x.yaml is a folder, not a file"``."""
    problem = input_file_problem(path)
    if problem is not None:
        raise CompressbenchError(f"{what} {path} {problem}" + (f"; {hint}" if hint else ""))
    return Path(path)


def read_error(path: str | Path, exc: OSError, what: str) -> CompressbenchError:
    """An OSError met while reading ``path`` (after :func:`check_input_file` passed) as one error."""
    return CompressbenchError(f"cannot read {what} {path}: {exc.strerror or type(exc).__name__}")
