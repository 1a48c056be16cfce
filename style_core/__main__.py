"""Command line: `python -m style_core {image,large,photo,video} CONTENT STYLE [STYLE ...] -o OUT [options]`.

A thin front end: its options are the settings classes' fields (`setting`), from which it builds the
mode's settings by name; it loads images and weights, iterates the mode's generator with a tqdm bar,
and writes the PNG (settings and losses in its text chunks) or video and an optional JSON report. Any
`StyleError` becomes one line `error: ...` (settings it names spelled as flags) and exit status 2;
Ctrl-C, in every mode, one line `error: stopped; ...` and exit status 130 (`CtrlC`).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import sys
import threading
from pathlib import Path

from .errors import StyleError, spelled
from .files import check_readable, check_writable, same_file, user_file
from .settings import DEFAULT_LR, ImageSettings, described, flag


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise StyleError(f"{message} (see --help)")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from .large import LargeSettings
    parser = _Parser(prog="python -m style_core", description="Neural style transfer studio (JAX).")
    modes = parser.add_subparsers(dest="mode", required=True, parser_class=_Parser)
    p = modes.add_parser("image", help="paint one content image in the style of one or more styles",
                         description="Gatys-style transfer of one image. Defaults follow the research "
                                     "deck and Gatys et al. (2015).")
    _image_options(p)
    p = modes.add_parser("large", help="a print-size image, painted tile by tile without seams",
                         description="Large-image mode: the style targets are computed at the output's "
                                     "scale, a global pass at --base-size initialises every tile, tiles "
                                     "are blended with feathered overlaps. Finished tiles are kept in a "
                                     "job folder, so a stopped job continues with --resume.")
    _image_options(p, skip=("size",), helps={  # --size is the output's (LargeSettings.size)
        "iterations": "optimisation steps of the global pass at its full size"})
    _options(p, LargeSettings)
    _job_options(p, "tiles")
    _photo_parser(modes)
    _video_parser(modes)
    return parser


def _options(p: argparse.ArgumentParser, cls, defaults: dict | None = None, helps: dict | None = None,
             skip: tuple[str, ...] = ()) -> None:
    """One option per field of the settings class `cls`, with the field's help, default and flag;
    `defaults` and `helps` replace some (a mode's own defaults and wording)."""
    defaults, helps = defaults or {}, helps or {}
    for f in described(cls):
        if f.name in skip:
            continue
        text, default = helps.get(f.name, f.metadata["help"]), defaults.get(f.name, f.default)
        if f.type == "bool":
            p.add_argument(flag(f), dest=f.name, action="store_true", help=text)
            continue
        kind = next((t for name, t in (("int", int), ("float", float), ("tuple", _floats))
                     if str(f.type).startswith(name)), str)
        choices = f.metadata.get("choices")
        p.add_argument(flag(f), dest=f.name, type=kind, default=default,
                       metavar="{" + ",".join(choices) + "}" if choices else None,
                       help=text + ("" if default in (None, "", ()) else " (%(default)s)"))


def _image_options(p: argparse.ArgumentParser, defaults: dict | None = None, helps: dict | None = None,
                   skip: tuple[str, ...] = ()) -> None:
    """Inputs, output, report and every image-mode setting (each mode has them)."""
    helps = helps or {}
    p.add_argument("content", help=helps.get("content", "content image (any format Pillow reads)"))
    p.add_argument("styles", nargs="+", metavar="style", help="one or more style images")
    p.add_argument("-o", "--output", required=True,
                   help=helps.get("output", "output image (.png keeps the settings inside)"))
    _options(p, ImageSettings, defaults, helps, skip)
    _mask_options(p)
    p.add_argument("--report", default=None, help="write a JSON report of the run to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _mask_options(p: argparse.ArgumentParser) -> None:
    """Spatial control (regions.py): masks per style image, or colour-coded label images."""
    p.add_argument("--masks", nargs="+", metavar="MASK",
                   help="one greyscale mask per style image, white where that style goes (resized to the "
                        "output; grey blends); pixels no mask covers keep the content")
    p.add_argument("--style-masks", nargs="+", metavar="MASK",
                   help="one greyscale mask per style image, white where to learn that style from (all of "
                        "it by default); without --masks each style covers the whole output")
    p.add_argument("--content-labels", metavar="LABELS",
                   help="colour-coded label image of the content (PNG); each colour is painted from the "
                        "part of the style image whose --style-labels has that colour")
    p.add_argument("--style-labels", nargs="+", metavar="LABELS",
                   help="one colour-coded label image per style image; every colour of the content labels "
                        "must be in one style label image (colours under 0.1%% are noise)")
    p.add_argument("--auto-regions", nargs="?", type=int, const=0, default=None, metavar="K",
                   help="image and photo modes: find K regions (2-16; chosen when not given) in the content "
                        "and K + 2 in each style image on the network's features, colour and position, and "
                        "paint each content region from the style regions that resemble it (sky to sky); "
                        "needs trained weights to be meaningful")


def _mask_files(args: argparse.Namespace) -> list[str]:
    return [*(args.masks or ()), *(args.style_masks or ()), *filter(None, [args.content_labels]),
            *(args.style_labels or ())]


AUTO_REGION_MODES = ("image", "photo")


def _check_auto_regions(args: argparse.Namespace) -> None:
    """--auto-regions alone, in a mode that takes it, with a K from 2 to MAX_REGIONS (0: chosen)."""
    from .regions import MAX_REGIONS
    if getattr(args, "auto_regions", None) is None:
        return
    if args.mode not in AUTO_REGION_MODES:
        raise StyleError(f"--auto-regions is for image and photo modes, not {args.mode} mode")
    if _mask_files(args):
        raise StyleError("--auto-regions cannot be combined with --masks, --style-masks, --content-labels or "
                         "--style-labels: it finds the regions itself")
    if args.auto_regions != 0 and not 2 <= args.auto_regions <= MAX_REGIONS:
        raise StyleError(f"--auto-regions takes a number of regions from 2 to {MAX_REGIONS} (or none: chosen), "
                         f"not {args.auto_regions}")


def _found_regions(args: argparse.Namespace, image, content, styles, weights):
    """The regions --auto-regions finds (`auto_regions.find_regions`), at AUTO_SIZE px whatever the run's
    size (or the images' own, if smaller: at 256 px a mixed region of the style's sky and city is
    painted into the content's city, bench/LOG.md 27), with the run's seed; and what the report says
    of them."""
    from .auto_regions import find_regions
    from .regions import check_regions
    found = find_regions(content, styles, weights, k=args.auto_regions or None, seed=image.seed)
    said = {"k": found.k, "chosen": not args.auto_regions,
            "pairs": [{"style": s, "style_regions": None if js is None else list(js)} for s, js in found.pairs]}
    return check_regions(found.regions(), len(styles), image.style_blend), said


def _regions(args: argparse.Namespace, mode, styles: int, blend: tuple | None) -> tuple:
    """The regions the mask or label options describe (none without them), checked before any work
    (the weights' download included)."""
    from .images import load_image, load_mask
    from .regions import regions_from
    _check_auto_regions(args)
    if not _mask_files(args):
        return ()
    if not mode.regions:
        raise StyleError(f"masks are not supported in {args.mode} mode yet")
    labels = functools.partial(load_image, still=True)
    masks = lambda files: [load_mask(f) for f in files or ()]  # noqa: E731
    return regions_from(styles, masks=masks(args.masks), style_masks=masks(args.style_masks),
                        content_labels=labels(args.content_labels) if args.content_labels else None,
                        style_labels=[labels(f) for f in args.style_labels or ()], blend=blend).regions


def _job_options(p: argparse.ArgumentParser, what: str) -> None:
    """--job, --resume, --keep-job of the modes that keep finished `what` (tiles, frames) in a folder."""
    p.add_argument("--job", default=None,
                   help=f"job folder keeping finished {what} (OUTPUT.job); removed once the output is "
                        "written unless --keep-job")
    p.add_argument("--resume", action="store_true", help="continue the job in the job folder")
    p.add_argument("--keep-job", action="store_true", help="keep the job folder after a finished run")
    p.add_argument("--cluster", default="local", metavar="WHERE",
                   help=f"where the {what} run: local (this machine, the default); ray (the Ray cluster "
                        "RAY_ADDRESS names, or a local one started for this run); HOST:PORT or "
                        "ray://HOST:PORT (that Ray cluster). The job folder stays on this machine")


def _video_parser(modes) -> None:
    from .video import MAX_VIDEO_SIZE, VIDEO_DEFAULTS, VideoSettings
    p = modes.add_parser("video", help="a clip stylised frame by frame without flicker",
                         description="Video mode: each frame is image mode plus a temporal loss against the "
                                     "previous stylised frame warped along the input's optical flow (Ruder "
                                     "et al.), occluded pixels masked out; later frames start from that warp "
                                     "and stop early on --tol. Finished frames are kept in a job folder, so "
                                     "a stopped job continues with --resume.")
    _image_options(p, VIDEO_DEFAULTS, helps={
        "size": f"longest side of the stylised frames in pixels (at most {MAX_VIDEO_SIZE})",
        "iterations": "steps of the first frame, and of each chunk's first",
        "content": "input video (mp4, mov, webm, avi, mkv, gif)",
        "output": "output video: .mp4 (H.264, the input's frame rate and audio) or .gif"})
    _options(p, VideoSettings)
    _job_options(p, "frames")


def _photo_parser(modes) -> None:
    from .photo import PHOTO_ADAM_LR, PHOTO_DEFAULTS, PHOTO_STYLE_WEIGHT, PhotoSettings
    p = modes.add_parser("photo", help="photorealistic transfer: the style's colours and light, the "
                                       "content's structure",
                         description="Photo mode (Luan et al. 2017): image mode plus gamma * L_photo, the "
                                     "matting Laplacian of the content, so that the output is locally an "
                                     "affine function of the content's colours. Defaults: the research "
                                     "deck's schedule, weights tuned on a trained VGG16 (bench/LOG.md 22).")
    _image_options(p, PHOTO_DEFAULTS, helps={
        "iterations": "optimisation steps at the full size; with --two-stage, of the first stage",
        "lr": f"learning rate; default {PHOTO_ADAM_LR:g} for adam (the deck's), else "
              + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items() if k != "adam"),
        "style_weight": "alpha, weight of the style loss; default " + ", ".join(
            f"{v:g} ({k})" for k, v in PHOTO_STYLE_WEIGHT.items())})
    _options(p, PhotoSettings)


def write_report(path: Path, report: dict) -> None:
    with user_file(path) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2, default=str))


def _report_path(args: argparse.Namespace, inputs: tuple) -> Path | None:
    if not args.report:
        return None
    report_path = check_writable(args.report)
    if any(same_file(report_path, p) for p in (*inputs, args.output)):
        raise StyleError(f"{report_path}: the report would overwrite an input or the output")
    return report_path


def _weights_file(args: argparse.Namespace) -> str | None:
    """The weights file the run reads (`weights` or STYLE_CORE_WEIGHTS), if any: an input like the
    images, never to be overwritten."""
    source = getattr(args, "weights", None) or os.environ.get("STYLE_CORE_WEIGHTS")
    return None if not source or source == "random" else source


def _inputs(args: argparse.Namespace) -> tuple[str, ...]:
    """Every file the run reads: content, styles, masks and label images, the weights file."""
    return (args.content, *args.styles, *_mask_files(args), *filter(None, [_weights_file(args)]))


def _check_inputs(args: argparse.Namespace) -> None:
    """Each input is a regular file that can be read, before anything opens one (a FIFO, a device
    or a folder would hang the run or fail deep inside it)."""
    for path in _inputs(args):
        check_readable(path)


def _weights(args: argparse.Namespace, backbone: str, source: str | None):
    from tqdm import tqdm

    from .weights import load_weights
    bar = None

    def download_progress(what: str, done: int, total: int) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=what, file=sys.stderr)
        bar.update(done - bar.n)

    weights = load_weights(backbone, source, download_progress)
    if bar is not None:
        bar.close()
    if not weights.trained:
        print(f"warning: {weights.source}", file=sys.stderr)
    return weights


def _job_folder(args: argparse.Namespace, output: Path, report_path: Path | None) -> Path:
    """--job (OUTPUT.job by default), refused if it is or would hold a file the job did not make."""
    from .jobs import check_folder
    job = Path(args.job) if args.job else output.with_name(output.name + ".job")
    return check_folder(job, [*_inputs(args), output, *([report_path] if report_path else [])])


def _end_job(args: argparse.Namespace, job: Path, result, pieces: tuple) -> None:
    """Removes the finished job's own files (unless --keep-job) and says which damaged pieces of a
    resumed job were made again."""
    from .jobs import remove_folder
    if result.remade:
        print(f"note: damaged job files were made again: {', '.join(result.remade)}", file=sys.stderr)
    if not args.keep_job and not remove_folder(job, pieces):
        print(f"note: {job} keeps files the job did not make; only the job's own were removed",
              file=sys.stderr)


class Stopped(Exception):
    """Ctrl-C ended the run; the message says what was kept. Exit status 130, as for any Ctrl-C."""


class CtrlC:
    """The CLI's SIGINT handler. While a mode's events are followed (`following`), the first Ctrl-C
    only sets `stop`: the run ends at its next event (after the chunk, tile or frame at work, or
    before a compilation), closing the mode's generator. A KeyboardInterrupt raised at any moment
    could land in one of JAX's callbacks, which swallows it ("Exception ignored in:
    <function _xla_gc_callback>"), and the run never ended (issue 32, 6). Elsewhere (loading,
    writing) it raises KeyboardInterrupt as usual, and sets `stop` too, in case that is swallowed.
    A second Ctrl-C ends the process at once."""

    def __init__(self):
        self.stop = threading.Event()
        self.following = False

    def __call__(self, signum, frame) -> None:
        if self.stop.is_set():
            print("error: stopped at once (Ctrl-C twice); a job folder keeps what was finished",
                  file=sys.stderr, flush=True)
            os._exit(130)
        self.stop.set()
        if not self.following:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        """This handler for SIGINT while the run lasts (the main thread's only: elsewhere none)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _resumable(job: Path | None, what: str | None):
    """Around a job's events: Ctrl-C becomes one line saying where the finished `what` are kept."""
    try:
        yield
    except KeyboardInterrupt:
        if job is None:
            raise
        raise Stopped(f"stopped; the finished {what} are kept in {job}: rerun with --resume to continue") from None


def _follow(events, quiet: bool, ctrl_c: CtrlC):
    """Iterates a mode's events (`modes.follow`) with one progress bar in the mode's unit (steps,
    tiles, frames), from the first stage that counts them on; earlier stages (style targets, a global
    pass) are said in a line each. Returns the result; after a Ctrl-C (`ctrl_c.stop`), the events
    are closed at the next one and KeyboardInterrupt raised."""
    from tqdm import tqdm

    from .modes import follow
    bar, said = None, None
    ctrl_c.following = True
    try:
        for view in follow(events, ctrl_c.stop):
            event = view.event
            if view.stopped:
                raise KeyboardInterrupt
            if view.result is not None:
                return view.result
            if event.stage in ("steps", "tiles", "frames") and bar is None and not quiet:
                bar = tqdm(total=event.total, unit=event.unit, file=sys.stderr, dynamic_ncols=True,
                           desc=f"{event.shape[1]}x{event.shape[0]}" if event.layout else None)
            if bar is not None:
                bar.total = event.total
                bar.update(event.completed - bar.n)
                bar.set_postfix(view.postfix, refresh=False)
            elif not quiet and event.stage != said:
                print(f"{event.stage}...", file=sys.stderr)
                said = event.stage
    finally:
        ctrl_c.following = False
        if bar is not None:
            bar.close()


def _write(args, output: Path, report_path: Path | None, result, weights, picture: bool,
           found: dict | None = None) -> None:
    """The output `picture` (settings and losses in its text chunks) unless the mode wrote its output
    itself, and the report; `found`: what --auto-regions found, in both."""
    from .images import save_image
    report = result.report() | ({"auto_regions": found} if found else {})
    if picture:
        text = {"Software": "style_core", "style_core": {k: v for k, v in report.items() if k != "history"}}
        save_image(output, result.image, text | ({} if weights.trained else {"Warning": weights.source}))
    if report_path:
        masks = {"mask_files": _mask_files(args)} if _mask_files(args) else {}
        write_report(report_path, {**report, "content": str(args.content),
                                   "styles": list(map(str, args.styles)), "output": str(output), **masks})



def _content(args: argparse.Namespace, settings):
    """The content image; a clip is probed and its frames counted instead (refused before anything loads)."""
    from .images import load_image
    if args.mode != "video":
        return load_image(args.content)
    from .video import frames_to_do
    from .videoio import probe
    info = probe(args.content)
    frames_to_do(info, settings)
    if info.variable_rate and not args.quiet:
        print(f"note: {args.content} has a variable frame rate; it is resampled to its average, "
              f"{float(info.fps):.3g} fps", file=sys.stderr)
    return args.content


def _cluster(args: argparse.Namespace):
    """Where a job's units run (--cluster), connected: an unreachable cluster fails here, before any
    job folder or pass (it used to fail after the global pass, leaving a job folder behind)."""
    from .cluster import backend
    where = backend(args.cluster)
    where.connect()
    return where


def run(args: argparse.Namespace, ctrl_c: CtrlC) -> int:
    """Every mode alike: its settings by name from the options; the output, report and job folder
    checked, and the cluster connected, before anything loads; the inputs and weights; one loop over
    the mode's events; then the output, the report and the job folder's removal."""
    from .images import check_output_path, load_image
    from .jobs import made_parents
    from .modes import MODES
    mode = MODES[args.mode]
    settings = mode.settings(vars(args))
    image = getattr(settings, "image", settings)
    regions = _regions(args, mode, len(args.styles), image.style_blend)
    output = check_output_path(args.output, _inputs(args), **({"formats": mode.formats} if mode.formats else {}))
    report_path = _report_path(args, _inputs(args))
    job = _job_folder(args, output, report_path) if mode.keeps else None
    cluster = _cluster(args) if mode.keeps else None
    with made_parents(job) if job is not None else contextlib.nullcontext():
        content = _content(args, settings)
        styles = [load_image(s) for s in args.styles]
        weights = _weights(args, image.backbone, image.weights)
        found = None
        if getattr(args, "auto_regions", None) is not None:
            regions, found = _found_regions(args, image, content, styles, weights)
        with _resumable(job, mode.keeps):
            result = _follow(mode.start(content, styles, settings, weights, regions=regions, output=output,
                                         job=job, resume=getattr(args, "resume", False), backend=cluster),
                             args.quiet, ctrl_c)
        _write(args, output, report_path, result, weights, picture=mode.formats is None, found=found)
        if job is not None:
            _end_job(args, job, result, mode.pieces)
    if result.stop_reason.startswith("diverged"):
        print(f"warning: {result.stop_reason}", file=sys.stderr)
    if not args.quiet:
        print(f"wrote {output} ({mode.summary(result)})", file=sys.stderr)
    return 0


def _flag_of(name: str) -> str:
    """The flag of a setting that a library message names (--normalize for `normalization`)."""
    return next((flag(f) for f in _fields() if f.name == name), "--" + name.replace("_", "-"))


@functools.cache
def _fields() -> tuple:
    from .large import LargeSettings
    from .photo import PhotoSettings
    from .video import VideoSettings
    return tuple(f for cls in (ImageSettings, LargeSettings, PhotoSettings, VideoSettings) for f in described(cls))


def _backbone_from_weights(args: argparse.Namespace, argv: list[str]) -> None:
    """Without --backbone, a weights file that says which VGG it holds chooses it."""
    if not getattr(args, "weights", None) or args.weights == "random" or any(
            a == "--backbone" or a.startswith("--backbone=") for a in argv):
        return
    from .weights import file_backbone
    held = file_backbone(args.weights)
    if held:
        args.backbone = held   # layers the file's VGG lacks are refused by the settings, naming the valid ones


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    with CtrlC().installed() as ctrl_c:
        try:
            args = build_parser().parse_args(argv)
            _check_inputs(args)
            _backbone_from_weights(args, argv)
            from .runtime import use_compile_cache
            use_compile_cache()
            return run(args, ctrl_c)
        except StyleError as e:
            print(f"error: {spelled(str(e), _flag_of)}", file=sys.stderr)
            return 2
        except Stopped as e:
            print(f"error: {e}", file=sys.stderr)
            return 130
        except KeyboardInterrupt:
            print("error: stopped; nothing was written", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
