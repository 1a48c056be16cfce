"""Atomic file writes: a file appears under its final name complete, or not at all."""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Sequence

from .errors import StyleError


_UMASK_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _cached_umask() -> int:
    with _UMASK_LOCK:  # set and restored: no other thread may create a file in between
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def _umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux), else set and
    restored once, under a lock, and remembered (another thread would otherwise race with it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return _cached_umask()


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
        with contextlib.suppress(OSError):  # best effort: some filesystems refuse chmod
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
def user_file(path: str | os.PathLike, folders: Sequence[str | os.PathLike] = (),
              what: str | None = None) -> Iterator[str]:
    """`atomic_path` for a file the user asked for (an output, a report, a job's piece), after making
    `folders` (with their parents): a failure to write it (a full disk, a folder that is not writable)
    is one line, naming `what` (default: the file), and nothing is left under its name."""
    try:
        for folder in folders:
            Path(folder).mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as e:
        raise cannot_write(what or path, e) from None


def cannot_write(what: str | os.PathLike, error: OSError) -> StyleError:
    """The one line for a file (or `what` else) that could not be written."""
    return StyleError(f"cannot write {what}: {error.strerror or error}; nothing was written there")


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
