"""Atomic file writes: a file appears under its final name complete, or not at all."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import StyleError


def _umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux), else set and
    restored at once."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary file beside `path` to write to; it replaces `path` when the block completes and
    is removed if the block fails or is interrupted.

    The file ends with the permissions a plain open() would give it: those of the file it replaces,
    or 0666 less the umask for a new one (mkstemp makes it 0600, which a shared folder's group could
    not read).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        os.fchmod(fd, mode)
        os.close(fd)
        fd = None
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def user_file(path: str | os.PathLike) -> Iterator[str]:
    """`atomic_path` for a file the user asked for (an output, a report, a job's piece): a failure to
    write it (a full disk, a folder that is not writable) is one line, and nothing is left under its
    name."""
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as e:
        raise StyleError(f"cannot write {path}: {e.strerror or e}; nothing was written there") from None


def check_writable(path: str | os.PathLike) -> Path:
    """Refuses, before any work is done, a file name that could not be written atomically: a folder
    that does not exist or cannot be written (tried, not guessed from the mode bits, which root
    ignores), a folder under that name, or a device, pipe or socket (replacing /dev/null would be
    a disaster)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise StyleError(f"{path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise StyleError(f"{path}: is a folder")
    if path.exists() and not path.is_file():
        raise StyleError(f"{path}: is not a regular file (a device, pipe or socket)")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise StyleError(f"{path}: the folder {path.parent} is not writable ({e.strerror or e})") from None
    return path
