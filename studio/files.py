"""The studio's files: a temporary folder of its own, the runs' folders in it, and their pruning.

Imported before Gradio (studio/__init__.py): Gradio reads GRADIO_TEMP_DIR when its modules load.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path


def _private_temp_dir() -> tuple[Path, bool]:
    """Gradio's uploads and served copies, and our runs: a folder of this process's own (0700, removed
    at exit) unless GRADIO_TEMP_DIR names one. Gradio's default, /tmp/gradio, is shared by every
    program on the machine, and Gradio serves what is in it."""
    if not os.environ.get("GRADIO_TEMP_DIR"):
        path = tempfile.mkdtemp(prefix="style_studio-")  # mode 0700
        os.environ["GRADIO_TEMP_DIR"] = path
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        return Path(path), True
    return Path(os.environ["GRADIO_TEMP_DIR"]), False


TEMP, TEMP_IS_OURS = _private_temp_dir()
RUNS = TEMP / "runs"
# Disk budget: a session's files go when its page closes; anything older than an hour (stopped jobs
# kept for resuming: a day) goes on the next run; and the runs folder never holds more than RUNS_BUDGET
# bytes (oldest first). Gradio's copies of uploads and results go after the same hour (delete_cache).
RUN_MAX_AGE = 3600
JOB_MAX_AGE = 86400
RUNS_BUDGET = 2 << 30
KEEP: set[str] = set()  # files the page itself shows (the examples' thumbnails): never pruned


def session_of(request) -> str:
    """A Gradio request's session, as a folder name."""
    key = getattr(request, "session_hash", None) or "local"
    return re.sub(r"[^A-Za-z0-9_-]", "_", key)[:64]


def new_run_dir(request=None) -> Path:
    prune_runs()
    folder = RUNS / "sessions" / session_of(request)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="run-", dir=folder))


def job_dir(mode: str, key: str) -> Path:
    """The folder of a stopped large or video job (kept a day, for any session to continue)."""
    return RUNS / f"{mode}-jobs" / key


def _size_and_age(path: Path, now: float) -> tuple[int, float]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    newest = max((p.stat().st_mtime for p in files), default=path.stat().st_mtime)
    return sum(p.stat().st_size for p in files), now - newest


def gradio_copies() -> list[Path]:
    """Gradio's uploads and served copies (one hashed folder each) in our own temp folder. Gradio's
    delete_cache misses the copies of streamed outputs, so we prune them with our runs; in a folder
    named by GRADIO_TEMP_DIR, which other programs may share, they are left to Gradio."""
    if not TEMP_IS_OURS or not TEMP.is_dir():
        return []
    return [entry for entry in TEMP.iterdir() if entry != RUNS and str(entry) not in KEEP
            and not (entry.is_dir() and any(str(f) in KEEP for f in entry.iterdir()))]


def prune_runs(now: float | None = None) -> None:
    """Keeps the app's files within their bounds: run folders and Gradio's copies older than
    RUN_MAX_AGE, stopped jobs older than JOB_MAX_AGE, then the oldest until RUNS_BUDGET bytes are left."""
    now = time.time() if now is None else now
    candidates = [(entry, RUN_MAX_AGE) for entry in [*gradio_copies(), *RUNS.glob("sessions/*/run-*")]]
    candidates += [(entry, JOB_MAX_AGE) for entry in RUNS.glob("*-jobs/*")]  # stopped large and video jobs
    entries = []
    for entry, max_age in candidates:
        try:
            size, age = _size_and_age(entry, now)
        except OSError:
            continue
        if age > max_age:
            remove(entry)
        else:
            entries.append((age, size, entry))
    for empty in RUNS.glob("sessions/*"):
        with contextlib.suppress(OSError):
            empty.rmdir()  # only an empty session folder
    total = sum(size for _, size, _ in entries)
    for age, size, entry in sorted(entries, reverse=True):
        if total <= RUNS_BUDGET:
            break
        remove(entry)
        total -= size


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def end_session(request) -> None:
    """A closed page: its runs' files go with it (stopped jobs stay for another session to resume)."""
    shutil.rmtree(RUNS / "sessions" / session_of(request), ignore_errors=True)
