"""Job folders of the long modes (large, video): what makes two jobs the same, and one folder type
that keeps a job's pieces, so that a stopped job continues and a folder is never mixed up with another
job's. A mode describes its pieces (`Piece`: a file name and a `Format`); `JobFolder` writes them
atomically, reads them back with damage detection, and `remove_folder` removes only the names they give."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import string
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .errors import StyleError
from .files import name_too_long, same_file, user_file
from .images import load_image, to_uint8

# Image settings that change how a run is shown or where weights come from, not its pixels.
RUN_ONLY = ("steps_per_call", "preview_every", "weights")
# What reading a damaged or foreign piece raises (a truncated zip, a PNG cut short, a missing key).
DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def fingerprint(images: Sequence[np.ndarray], settings, weights, files: Sequence[str | os.PathLike] = ()) -> str:
    """What makes two jobs the same: SHA-256 of the input files (streamed), the input images, every
    setting that changes the pixels (`settings.to_dict()`, its "image" without RUN_ONLY) and the
    weights' source."""
    h = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            hashlib.file_digest(f, lambda: h)  # streamed into h
    for image in images:
        h.update(str(image.shape).encode())
        h.update(np.ascontiguousarray(image, np.float32).tobytes())
    d = settings.to_dict()
    d["image"] = {k: v for k, v in d["image"].items() if k not in RUN_ONLY}
    h.update(json.dumps(d, sort_keys=True, default=str).encode())
    h.update(weights.source.encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Format:
    """How a piece's image is written (to a temporary file) and read back, with its metadata where
    the format can hold it ({} where it cannot: the piece's `table` holds it)."""
    write: Callable[[str, np.ndarray, dict], None]
    read: Callable[[Path], tuple[np.ndarray, dict]]


def _write_npz(tmp: str, image: np.ndarray, meta: dict) -> None:
    with open(tmp, "wb") as f:  # a file, not a name: np.savez would add ".npz" to the temporary name
        np.savez(f, image=np.asarray(image, np.float32), losses=json.dumps(meta))


def _read_npz(path: Path) -> tuple[np.ndarray, dict]:
    with np.load(path) as f:
        image, meta = f["image"], json.loads(str(f["losses"]))
    if image.dtype != np.float32 or not isinstance(meta, dict):
        raise ValueError("not a job's piece")
    return image, meta


# float32 and the metadata beside it: read back exactly (large mode's tiles and global pass)
NPZ = Format(_write_npz, _read_npz)
# 8 bits a channel, as the output shows it (the bytes `images.save_image` writes): a video frame
PNG = Format(lambda tmp, image, meta: Image.fromarray(to_uint8(image)).save(tmp, format="PNG"),
             lambda path: (load_image(path), {}))


@dataclass(frozen=True)
class Piece:
    """One kind of piece a job keeps. `name` is the file's path in the job folder, a template whose
    fields are the piece's numbers, zero-padded ("tiles/{:05d}.npz"); `table`, a JSON file in the
    job folder that holds the pieces' metadata ({"C-T": {...}}, keyed by their numbers), for a
    format that cannot hold it."""
    name: str
    format: Format
    table: str | None = None

    def path(self, *numbers: int) -> str:
        return self.name.format(*numbers)

    def key(self, *numbers: int) -> str:
        return "-".join(map(str, numbers))

    def pattern(self) -> tuple[str, str]:
        """(subfolder, regular expression of the file names): exactly the names `path` gives."""
        folder, _, name = self.name.rpartition("/")
        parts = string.Formatter().parse(name)
        return folder, "".join(re.escape(text) + (rf"\d{{{int(spec[:-1])}}}" if spec else "")
                               for text, _, spec, _ in parts)


def check_folder(folder: str | os.PathLike, keep: Sequence[str | os.PathLike]) -> Path:
    """Refuses a job folder that is, or holds, one of the files in `keep` (the inputs, the weights,
    the output, the report): the folder is removed when the job is done, and must hold only what the
    job made. A name the system cannot take (too long) is refused here too, before any work."""
    folder = _usable_name(folder)
    where = folder.resolve()
    for path in keep:
        resolved = Path(path).resolve()
        if resolved == where or where in resolved.parents or same_file(path, folder):
            raise StyleError(f"the job folder {folder} would hold {path}, and a job folder is removed "
                             f"when the job is done: choose a job folder of its own")
    return folder


def _usable_name(folder: str | os.PathLike) -> Path:
    """The job folder's name, refused in one line where the system cannot take it (a name too long),
    before any folder of it is made."""
    folder = Path(folder)
    why = name_too_long(folder)
    try:
        folder.lstat()
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as e:
        why = why or e.strerror or str(e)
    if why:
        raise StyleError(f"the job folder {folder} cannot be made: {why}: choose another with `job`")
    return folder


def open_folder(folder: str | os.PathLike, key: str, resume: bool, subfolders: Sequence[str],
                description: dict | None = None) -> Path:
    """Opens (resume) or starts the job folder for the job `key`, with its `subfolders` of pieces.
    job.json notes whether the job made the folder (`remove_folder` removes only a folder it made).

    Refuses, in one line each: a symbolic link (a finished job's files are removed, never through a
    link), a damaged manifest, an earlier job without `resume`, another job's folder, a file or a
    non-empty folder that holds no job, a folder that cannot be written (the folders made for it are
    removed again).
    """
    folder = _usable_name(folder)
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
        for sub in subfolders:
            _subfolder(folder, sub)
        return folder
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise StyleError(f"{folder} is not an empty folder and holds no job: choose another job folder")
    created = not folder.exists()
    made = [folder / sub for sub in subfolders] + [f for f in (folder, *folder.parents) if not os.path.lexists(f)]
    try:
        with user_file(manifest, folders=[folder / sub for sub in subfolders] or [folder],
                       what=f"the job folder {folder}") as tmp:
            Path(tmp).write_text(json.dumps({"fingerprint": key, "created": created, **(description or {})},
                                            indent=2, default=str))
    except StyleError:
        _remove_empty(made)  # no job began: the folders made for it go
        raise
    return folder


def _subfolder(folder: Path, sub: str) -> None:
    """A resumed job's subfolder of pieces, made again if it went; one that is a file is a damaged job
    (mkdir raised FileExistsError, a traceback)."""
    try:
        (folder / sub).mkdir(exist_ok=True)
    except FileExistsError:
        raise StyleError(f"{folder / sub} is not a folder: the job folder {folder} is damaged; remove it or "
                         f"choose another") from None
    except OSError as e:
        raise StyleError(f"cannot make {folder / sub}: {e.strerror or e}") from None


def _remove_empty(folders: Sequence[Path]) -> None:
    """Removes `folders` (deepest first) while they are empty; stops at the first that is not."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


@contextlib.contextmanager
def made_parents(folder: str | os.PathLike):
    """Around a run whose job folder is `folder`: the folders above it that do not exist yet (the run
    makes them for the job) are removed again afterwards if they are empty, i.e. the job's folder
    went (finished and removed, or never made: the run was refused or failed first). A kept job
    keeps them. Only what was missing before the run is touched."""
    missing = [f for f in Path(folder).parents if not os.path.lexists(f)]
    try:
        yield
    finally:
        _remove_empty(missing)


def remove_folder(folder: str | os.PathLike, pieces: Sequence[Piece]) -> bool:
    """Removes a finished job's own files: job.json, its `pieces` (the names their templates give,
    from the code, never from the folder) and their tables, with any temporary file an interrupted
    write of them left. Then its subfolders if that emptied them, and the folder itself if the job
    made it. Nothing is followed through a symbolic link. Returns whether nothing the job did not
    make is left.
    """
    folder = Path(folder)
    try:
        created = json.loads((folder / "job.json").read_text()).get("created") is True
    except (OSError, ValueError, AttributeError):
        return not folder.exists()  # no job here (or a damaged one): nothing of it is removed
    if folder.is_symlink():
        return False
    names: dict[Path, list[str]] = {folder: [re.escape("job.json")]}
    tables = [("", re.escape(piece.table)) for piece in pieces if piece.table]
    for sub, pattern in [piece.pattern() for piece in pieces] + tables:
        names.setdefault(folder / sub, []).append(pattern)
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
    """An open job folder (`open_folder`'s arguments) that keeps the job's `pieces`: each is written
    atomically with its metadata (losses, steps, stop reason) and read back. A damaged or foreign
    piece (unreadable, of another shape) or table is noted in `remade` (relative to the folder) and
    the job makes it again. Safe from several threads: video chunks on several devices save at once.
    """

    def __init__(self, folder: str | os.PathLike, key: str, resume: bool, pieces: Sequence[Piece],
                 description: dict | None = None):
        subfolders = sorted({piece.pattern()[0] for piece in pieces} - {""})
        self.folder = open_folder(folder, key, resume, subfolders, description)
        self.remade: list[str] = []
        self._lock = threading.Lock()
        self._tables = {piece.table: self._read_table(piece.table) for piece in pieces if piece.table}

    def _read_table(self, name: str) -> dict[str, dict]:
        """A table of metadata as kept; a damaged one is noted and started afresh at once (the
        pieces' metadata is lost, not the pieces)."""
        path = self.folder / name
        try:
            table = json.loads(path.read_text()) if path.exists() else {}
            # a bare number is a step count, as video jobs kept them before their stop reasons
            table = {k: {"steps": v} if isinstance(v, int) else v for k, v in table.items()}
            if not all(isinstance(v, dict) for v in table.values()):
                raise ValueError("not a table of metadata")
            return table
        except (OSError, ValueError, AttributeError):
            self._damaged(path)
            self._write_table(name, {})
            return {}

    def _write_table(self, name: str, table: dict) -> None:
        with user_file(self.folder / name) as tmp:
            Path(tmp).write_text(json.dumps(table))

    def _damaged(self, path: Path) -> None:
        with self._lock:
            self.remade.append(str(Path(path).relative_to(self.folder)))

    def meta(self, piece: Piece, *numbers: int) -> dict:
        """The metadata of a piece kept in a table ({} where there is none)."""
        with self._lock:
            return dict(self._tables[piece.table].get(piece.key(*numbers), {}))

    def load(self, piece: Piece, *numbers: int, shape: tuple[int, int] | None = None
             ) -> tuple[np.ndarray, dict] | None:
        """The stored piece's image (of `shape`, if given) and metadata; None where there is none,
        or it is damaged (noted, and the job makes it again)."""
        path = self.folder / piece.path(*numbers)
        if not path.exists():
            return None
        try:
            image, meta = piece.format.read(path)
            if shape is not None and image.shape != (*shape, 3):
                raise ValueError("another size: not this job's piece")
        except DAMAGED:
            self._damaged(path)
            return None
        return image, self.meta(piece, *numbers) if piece.table else meta

    def save(self, piece: Piece, *numbers: int, image: np.ndarray, meta: dict) -> np.ndarray:
        """Keeps a finished piece and its metadata; returns its image as read back, which is what a
        resumed job reads, so that the work after it is the same whether or not the job stopped."""
        path = self.folder / piece.path(*numbers)
        with user_file(path) as tmp:
            piece.format.write(tmp, image, meta)
        if piece.table:
            with self._lock:
                self._tables[piece.table][piece.key(*numbers)] = meta
                self._write_table(piece.table, self._tables[piece.table])
        return piece.format.read(path)[0]


class MemoryFolder:
    """A job folder in memory, for a worker with no share of the driver's disk: it holds the pieces it
    was given (`kept`: (part, index) -> (8-bit image, meta)) and those it makes (`made`, in order, to
    be sent back), and reads each back as a JobFolder would (8-bit, as PNG pieces hold them), so the
    work goes on bit for bit as it would on the driver."""
    remade = ()

    def __init__(self, kept: dict):
        self.kept, self.made = dict(kept), []

    def load(self, piece, part: int, index: int, shape=None):
        stored = self.kept.get((part, index))
        return None if stored is None else (stored[0].astype(np.float32) / 255.0, dict(stored[1]))

    def save(self, piece, part: int, index: int, *, image: np.ndarray, meta: dict) -> np.ndarray:
        self.kept[(part, index)] = (to_uint8(image), meta)
        self.made.append((part, index, *self.kept[(part, index)]))
        return self.load(piece, part, index)[0]
