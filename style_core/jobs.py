"""Job folders of the long modes (large, video): what makes two jobs the same, and opening a folder
for one, so that a stopped job continues and a folder is never mixed up with another job's."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import StyleError
from .files import atomic_path

# Image settings that change how a run is shown or where weights come from, not its pixels.
RUN_ONLY = ("chunk", "preview_every", "weights")


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
                description: dict | None = None, files: Sequence[str] = ()) -> Path:
    """Opens (resume) or starts the job folder for the job `key`, with its `subfolder` of results;
    `files` are glob patterns (relative to the folder) of every file the job writes besides
    job.json, which `remove_folder` removes.

    Refuses, in one line each: a damaged manifest, an earlier job without `resume`, another job's
    folder, a file or a non-empty folder that holds no job, a folder that cannot be written.
    """
    folder = Path(folder)
    manifest = folder / "job.json"
    if manifest.exists():
        try:
            found = json.loads(manifest.read_text()).get("fingerprint")
        except (OSError, ValueError):
            raise StyleError(f"{manifest} is damaged: remove the job folder {folder} or choose another") from None
        if not resume:
            raise StyleError(f"the job folder {folder} holds an earlier job: pass --resume to continue it, "
                             f"or choose another folder")
        if found != key:
            raise StyleError(f"the job folder {folder} holds a job with other inputs or settings: choose "
                             f"another folder, or rerun with the same ones")
        (folder / subfolder).mkdir(exist_ok=True)
        return folder
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise StyleError(f"{folder} is not an empty folder and holds no job: choose another job folder")
    try:
        (folder / subfolder).mkdir(parents=True, exist_ok=True)
        with atomic_path(manifest) as tmp:
            Path(tmp).write_text(json.dumps({"fingerprint": key, "files": list(files), **(description or {})},
                                            indent=2, default=str))
    except OSError as e:
        raise StyleError(f"cannot write the job folder {folder}: {e.strerror or e}") from None
    return folder


def remove_folder(folder: str | os.PathLike) -> bool:
    """Removes a finished job's own files (job.json and what its "files" patterns match, with any
    temporary file an interrupted write left), then its folders if that emptied them. Anything
    else stays, and with it the folder. Returns whether the folder is gone."""
    folder = Path(folder)
    try:
        patterns = [str(p) for p in json.loads((folder / "job.json").read_text()).get("files", [])]
    except (OSError, ValueError, AttributeError, TypeError):
        return not folder.exists()  # no job here (or a damaged one): nothing of it is removed
    patterns = [p for p in patterns if not Path(p).is_absolute() and ".." not in Path(p).parts]
    places = {folder, *(folder / Path(pattern).parent for pattern in patterns)}
    own = [p for pattern in patterns for p in folder.glob(pattern)]
    own += [p for where in places for p in where.glob(".*.part")]
    for path in own:
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
    (folder / "job.json").unlink(missing_ok=True)
    for path in sorted(places, key=lambda p: len(p.parts), reverse=True):
        try:
            path.rmdir()
        except OSError:
            pass  # not empty: it holds something the job did not make
    return not folder.exists()


class JobFolder:
    """An open job folder (`open_folder`'s arguments) that notes the damaged pieces it finds on
    resume (`remade`, relative to the folder), which the job then makes again."""

    def __init__(self, folder: str | os.PathLike, key: str, resume: bool, subfolder: str,
                 description: dict | None = None, files: Sequence[str] = ()):
        self.folder = open_folder(folder, key, resume, subfolder, description, files)
        self.remade: list[str] = []
        self._lock = threading.Lock()   # pieces may be saved and loaded from several threads

    def damaged(self, path: Path) -> None:
        with self._lock:
            self.remade.append(str(Path(path).relative_to(self.folder)))
