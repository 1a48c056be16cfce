"""The user's files: inputs checked before they are read, outputs written atomically (a file appears
under its final name complete, or not at all)."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Sequence

from .errors import StyleError


_UMASK_LOCK = threading.Lock()
# Characters of a file's name kept in its temporary file's name: the temporary name adds about 16, and
# a name near the file system's limit (255 bytes) must still be writable.
TEMP_NAME_CHARS = 40


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
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".part", dir=path.parent)
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


def _temp_prefix(path: Path) -> str:
    """".NAME." for the temporary files beside `path` (NAME cut to TEMP_NAME_CHARS)."""
    return f".{path.name[:TEMP_NAME_CHARS]}."


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two names are one file: the same path once links are resolved, or (both existing)
    another link to the same file."""
    try:
        return Path(a).resolve() == Path(b).resolve() or (
            os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b))
    except (OSError, RuntimeError, ValueError):  # a name too long or a link loop is no file at all
        return False


def _unusable(path: Path, error: OSError) -> StyleError:
    """The one line for a name the system refuses to look up (too long, a link loop, no access)."""
    if error.errno == errno.ENAMETOOLONG:
        return StyleError(f"{path}: {name_too_long(path) or 'the path is too long'}: choose a shorter one")
    if error.errno == errno.ELOOP:
        return StyleError(f"{path}: a symbolic link that leads back to itself (a loop), not a file")
    return StyleError(f"{path}: {error.strerror or error}")


def name_too_long(path: str | os.PathLike) -> str | None:
    """What is wrong with a path that has a name (of the file or of a folder on the way) longer than
    the file system takes, or None where each fits: a path still to be made can be checked (the
    system reports a missing folder before a name too long in it)."""
    path = Path(path)
    limit = _name_max(path)
    longest = max(path.parts, key=lambda part: len(os.fsencode(part)), default="")
    size = len(os.fsencode(longest))
    if size <= limit:
        return None
    which = "name" if longest == path.name else f"folder name {longest[:24]}..."
    return f"the {which} is too long ({size} bytes; at most {limit} on this file system)"


def _name_max(path: Path) -> int:
    """The longest file name (in bytes) the file system under `path` allows."""
    for folder in path.parents:
        with contextlib.suppress(OSError, ValueError):
            return os.pathconf(folder, "PC_NAME_MAX")
    return 255


def _stat(path: Path) -> os.stat_result | None:
    """os.stat(path), None where nothing is there; any other failure is one line."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise _unusable(path, e) from None
    except ValueError:   # a NUL character
        raise StyleError(f"{path!r}: not a usable file name") from None


def check_readable(path: str | os.PathLike) -> Path:
    """Refuses, before it is opened, an input that is not a regular file one can read: missing, a
    folder, or a pipe, device or socket (reading a FIFO or /dev/zero would never end), a name too
    long or a link loop. Links are followed: a link to a file is that file."""
    path = Path(path)
    found = _stat(path)
    if found is None:
        raise StyleError(f"{path}: no such file")
    if stat.S_ISDIR(found.st_mode):
        raise StyleError(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(found.st_mode):
        raise StyleError(f"{path}: is not a regular file (a pipe, device or socket): give a file")
    if not os.access(path, os.R_OK):
        raise StyleError(f"{path}: cannot be read (permission denied)")
    return path


def cannot_write(what: str | os.PathLike, error: OSError) -> StyleError:
    """The one line for a file (or `what` else) that could not be written."""
    return StyleError(f"cannot write {what}: {error.strerror or error}; nothing was written there")


def check_writable(path: str | os.PathLike) -> Path:
    """Refuses, before any work is done, a file name that could not be written atomically: a folder
    that does not exist or cannot be written (tried, not guessed from the mode bits, which root
    ignores), a folder under that name, a device, pipe or socket (replacing /dev/null would be
    a disaster), a read-only file, or a name too long for the file system."""
    path = Path(path)
    too_long = name_too_long(path)
    if too_long:
        raise StyleError(f"{path}: {too_long}: choose a shorter one")
    folder = _stat(path.parent)
    if folder is None:
        raise StyleError(f"{path}: the folder {path.parent} does not exist")
    if not stat.S_ISDIR(folder.st_mode):
        raise StyleError(f"{path}: {path.parent} is not a folder")
    found = _stat(path)
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise StyleError(f"{path}: is a folder")
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise StyleError(f"{path}: is not a regular file (a device, pipe or socket)")
    if found is not None and (not found.st_mode & 0o222 or not os.access(path, os.W_OK)):
        # an atomic write replaces the name, which the folder allows: a protected file would go unasked
        raise StyleError(f"{path}: the file is read-only: make it writable to replace it, or choose "
                         f"another name")
    try:
        fd, probe = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".part", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise StyleError(f"{path}: the folder {path.parent} is not writable ({e.strerror or e})") from None
    return path
