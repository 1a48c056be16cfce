"""Job folders of the long modes (large, video): what makes two jobs the same, and opening a folder
for one, so that a stopped job continues and a folder is never mixed up with another job's."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import StyleError
from .files import user_file

# Image settings that change how a run is shown or where weights come from, not its pixels.
RUN_ONLY = ("steps_per_call", "preview_every", "weights")


def fingerprint(images: Sequence[np.ndarray], settings: dict, weights_source: str,
                files: Sequence[str | os.PathLike] = ()) -> str:
    """SHA-256 of the input files (streamed), the input images, every setting that changes the
    pixels (`settings["image"]` without RUN_ONLY) and the weights' source."""
    h = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    for image in images:
        h.update(str(image.shape).encode())
        h.update(np.ascontiguousarray(image, np.float32).tobytes())
    d = dict(settings)
    d["image"] = {k: v for k, v in d["image"].items() if k not in RUN_ONLY}
    h.update(json.dumps(d, sort_keys=True, default=str).encode())
    h.update(weights_source.encode())
    return h.hexdigest()


def check_folder(folder: str | os.PathLike, keep: Sequence[str | os.PathLike]) -> Path:
    """Refuses a job folder that is, or holds, one of the files in `keep` (the inputs, the output,
    the report): the folder is removed when the job is done, and must hold only what the job made."""
    folder = Path(folder)
    where = folder.resolve()
    for path in keep:
        resolved = Path(path).resolve()
        if resolved == where or where in resolved.parents:
            raise StyleError(f"the job folder {folder} would hold {path}, and a job folder is removed "
                             f"when the job is done: choose a job folder of its own")
    return folder


def open_folder(folder: str | os.PathLike, key: str, resume: bool, subfolder: str,
                description: dict | None = None) -> Path:
    """Opens (resume) or starts the job folder for the job `key`, with its `subfolder` of results.
    job.json notes whether the job made the folder (`remove_folder` removes only a folder it made).

    Refuses, in one line each: a symbolic link (a finished job's files are removed, never through a
    link), a damaged manifest, an earlier job without `resume`, another job's folder, a file or a
    non-empty folder that holds no job, a folder that cannot be written.
    """
    folder = Path(folder)
    if folder.is_symlink():
        raise StyleError(f"the job folder {folder} is a symbolic link: name the folder it points to, or "
                         f"another one")
    manifest = folder / "job.json"
    if manifest.exists():
        try:
            found = json.loads(manifest.read_text()).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            raise StyleError(f"{manifest} is damaged: remove the job folder {folder} or choose another") from None
        if not resume:
            raise StyleError(f"the job folder {folder} holds an earlier job: pass `resume` to continue it, "
                             f"or choose another folder")
        if found != key:
            raise StyleError(f"the job folder {folder} holds a job with other inputs or settings: choose "
                             f"another folder, or rerun with the same ones")
        (folder / subfolder).mkdir(exist_ok=True)
        return folder
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise StyleError(f"{folder} is not an empty folder and holds no job: choose another job folder")
    created = not folder.exists()
    with user_file(manifest, folders=[folder / subfolder], what=f"the job folder {folder}") as tmp:
        Path(tmp).write_text(json.dumps({"fingerprint": key, "created": created, **(description or {})},
                                        indent=2, default=str))
    return folder


def remove_folder(folder: str | os.PathLike, files: Sequence[tuple[str, str]]) -> bool:
    """Removes a finished job's own files: job.json and, for each (subfolder, pattern) in `files`
    (the job's naming scheme, from the code), the files in that subfolder whose whole name matches
    the regular expression, with any temporary file an interrupted write of them left. Then its
    subfolders if that emptied them, and the folder itself if the job made it. Nothing is followed
    through a symbolic link. Returns whether nothing the job did not make is left.
    """
    folder = Path(folder)
    try:
        created = json.loads((folder / "job.json").read_text()).get("created") is True
    except (OSError, ValueError, AttributeError):
        return not folder.exists()  # no job here (or a damaged one): nothing of it is removed
    if folder.is_symlink():
        return False
    names: dict[Path, list[str]] = {folder: [re.escape("job.json")]}
    for sub, pattern in files:
        names.setdefault(folder / sub if sub else folder, []).append(pattern)
    for where, patterns in names.items():
        if where.is_symlink() or not where.is_dir():
            continue
        own = re.compile("|".join(f"(?:{p})|\\.(?:{p})\\.[a-z0-9_]+\\.part" for p in patterns))
        for path in where.iterdir():
            if own.fullmatch(path.name) and not path.is_symlink() and path.is_file():
                path.unlink(missing_ok=True)
    for where in sorted(names, key=lambda p: len(p.parts), reverse=True):
        if where != folder or created:
            with contextlib.suppress(OSError):
                where.rmdir()  # fails where something the job did not make is left
    return not folder.exists() or not any(folder.iterdir())


class JobFolder:
    """An open job folder (`open_folder`'s arguments) that notes the damaged pieces it finds on
    resume (`remade`, relative to the folder), which the job then makes again."""

    def __init__(self, folder: str | os.PathLike, key: str, resume: bool, subfolder: str,
                 description: dict | None = None):
        self.folder = open_folder(folder, key, resume, subfolder, description)
        self.remade: list[str] = []
        self._lock = threading.Lock()   # pieces may be saved and loaded from several threads

    def damaged(self, path: Path) -> None:
        with self._lock:
            self.remade.append(str(Path(path).relative_to(self.folder)))
