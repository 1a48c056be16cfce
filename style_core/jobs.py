"""Job folders of the long modes (large, video): what makes two jobs the same, and opening a folder
for one, so that a stopped job continues and a folder is never mixed up with another job's."""

from __future__ import annotations

import hashlib
import json
import os
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


def open_folder(folder: str | os.PathLike, key: str, resume: bool, subfolder: str,
                description: dict | None = None) -> Path:
    """Opens (resume) or starts the job folder for the job `key`, with its `subfolder` of results.

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
            Path(tmp).write_text(json.dumps({"fingerprint": key, **(description or {})}, indent=2, default=str))
    except OSError as e:
        raise StyleError(f"cannot write the job folder {folder}: {e.strerror or e}") from None
    return folder
