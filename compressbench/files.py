"""The bottom of the package for files: checks on the files a command is given to read, atomic
writes of the files it produces, and the JSON text of records. It imports nothing of compressbench
but :mod:`compressbench.errors`, so every layer (runtimes, provenance, training, reports) uses it.

Reading: ``Path.is_file()`` is False for a missing path, a folder, a dangling or looping link, a FIFO
and a device alike; :func:`check_input_file` says which it is (a FIFO is refused before anything
opens it, since opening one for reading waits for a writer) and that a file exists but cannot be read.

Writing: check the destination first, then write atomically (temp file + rename).
:func:`check_writable` asks the file system, not the permission bits: it creates (and removes) a
probe file in the destination's folder, so a read-only mount, ``/proc`` or ``/sys`` (where even root
cannot create files) and a name longer than the file system allows fail before any long work, as
one error. An existing destination that is not a regular file (``/dev/null``, a named pipe) is
written in place: renaming a temp file over it would replace the device or pipe with a plain file.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
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


# --output is always a results file and --out always a saved model: a suffix of the other kind is a
# mix-up (e.g. 'compress -o small.pt' would write a text table into small.pt)
MODEL_SUFFIXES = (".pt", ".pth", ".tar", ".onnx")
RESULTS_SUFFIXES = (".json", ".md", ".csv", ".txt")


def check_results_path(output: str | Path, flag: str = "--output") -> None:
    """A results file's path must not look like a model file."""
    if Path(output).suffix.lower() in MODEL_SUFFIXES:
        raise CompressbenchError(
            f"{flag} {output} is for results (tables or JSON), not a model file; save the model with --out {output}"
        )


def check_model_path(out: str | Path, flag: str = "--out") -> None:
    """A saved model's path must not look like a results file."""
    if Path(out).suffix.lower() in RESULTS_SUFFIXES:
        raise CompressbenchError(
            f"{flag} {out} is the saved model (e.g. model.pt); write results with --output {out}"
        )


# -- writing: check first, then temp file + rename ---------------------------------------------

TEMP_PREFIX_MAX = 100  # characters of the file name kept in a temp file's name (NAME_MAX is usually 255 bytes)


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _special(path: Path) -> bool:
    """An existing destination that is not a regular file or a folder (a device, a FIFO)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def temp_prefix(path: Path) -> str:
    """The prefix of ``path``'s temp files: hidden, and short enough that the temp name fits too."""
    return f".{path.name[:TEMP_PREFIX_MAX]}."


def check_writable(path: str | Path) -> Path:
    """Fail early (before any long measurement) if ``path`` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    limit = _name_max(parent)
    if len(os.fsencode(path.name)) > limit:  # first: looking such a path up raises
        raise CompressbenchError(
            f"cannot write {path}: the file name is longer than the {limit} bytes the file system allows"
        )
    if path.is_dir():
        raise CompressbenchError(f"output path {path} is a directory; give a file name")
    if not parent.is_dir():
        raise CompressbenchError(f"cannot write {path}: folder {parent} does not exist")
    if _special(path):  # /dev/null, a named pipe: written in place
        if not os.access(path, os.W_OK):
            raise CompressbenchError(f"cannot write {path}: permission denied")
        return path
    if path.exists() and not os.access(path, os.W_OK):
        raise CompressbenchError(f"cannot write {path}: permission denied")
    try:  # the folder may refuse new files whatever its permission bits say (read-only mount, /proc)
        fd, probe = tempfile.mkstemp(dir=parent, prefix=temp_prefix(path), suffix=".probe")
    except OSError as exc:
        raise CompressbenchError(
            f"cannot write {path}: folder {parent} does not take new files ({_reason(exc)})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return path


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` so that no half-written file is ever left behind. A failure (the
    disk is full, the folder went away) is one :class:`CompressbenchError`."""
    path = check_writable(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    if _special(path):
        try:
            with open(path, mode) as handle:
                handle.write(data)
        except OSError as exc:
            raise CompressbenchError(f"cannot write {path}: {_reason(exc)}") from None
        return path
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
        with os.fdopen(fd, mode) as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a written file follows the umask
        os.replace(tmp, path)
    except OSError as exc:
        raise CompressbenchError(f"cannot write {path}: {_reason(exc)}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


# -- JSON text of records -----------------------------------------------------------------------------


def to_jsonable(value):
    """``value`` with NaN as None and numpy / torch scalars as Python numbers, containers recursively;
    a typed record (anything with ``to_json``, :mod:`compressbench.records`) as the JSON it writes."""
    if hasattr(value, "to_json") and callable(value.to_json):
        return to_jsonable(value.to_json())
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def render_json(record: dict) -> str:
    """The JSON text every command writes (``--format json``, results, baselines, sidecars)."""
    return json.dumps(to_jsonable(record), indent=2) + "\n"
