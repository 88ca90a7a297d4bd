"""Writing results: check the destination first, then write atomically (temp file + rename).

:func:`check_writable` asks the file system, not the permission bits: it creates (and removes) a
probe file in the destination's folder, so a read-only mount, ``/proc`` or ``/sys`` (where even root
cannot create files) and a name longer than the file system allows fail before any long work, as
one error. An existing destination that is not a regular file (``/dev/null``, a named pipe) is
written in place: renaming a temp file over it would replace the device or pipe with a plain file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from compressbench.errors import CompressbenchError

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
