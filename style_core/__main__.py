"""Command line: `python -m style_core {image,large,photo,video} CONTENT STYLE [STYLE ...] -o OUT [options]`.

A thin front end: its options are the settings classes' fields (`setting`), from which it builds the
mode's settings by name; it loads images and weights, iterates the mode's generator with a tqdm bar,
and writes the PNG (settings and losses in its text chunks) or video and an optional JSON report. Any
`StyleError` becomes one line `error: ...` (settings it names spelled as flags) and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from .errors import StyleError, spelled
from .files import check_writable, user_file
from .settings import DEFAULT_LR, DEFAULT_STYLE_WEIGHT, ImageSettings, described, flag, from_values


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
    p.add_argument("--report", default=None, help="write a JSON report of the run to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _job_options(p: argparse.ArgumentParser, what: str) -> None:
    """--job, --resume, --keep-job of the modes that keep finished `what` (tiles, frames) in a folder."""
    p.add_argument("--job", default=None,
                   help=f"job folder keeping finished {what} (OUTPUT.job); removed once the output is "
                        "written unless --keep-job")
    p.add_argument("--resume", action="store_true", help="continue the job in the job folder")
    p.add_argument("--keep-job", action="store_true", help="keep the job folder after a finished run")


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
                                     "affine function of the content's colours. Defaults are the research "
                                     "deck's, per pixel (its sums were over a 512x512 image).")
    _image_options(p, PHOTO_DEFAULTS, helps={
        "iterations": "optimisation steps at the full size; with --two-stage, of the first stage",
        "lr": f"learning rate; default {PHOTO_ADAM_LR:g} for adam (the deck's), else "
              + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items() if k != "adam"),
        "style_weight": f"alpha, weight of the style loss; default {PHOTO_STYLE_WEIGHT:g} (paper, the "
                        f"deck's), {DEFAULT_STYLE_WEIGHT['relative']:g} (relative)"})
    _options(p, PhotoSettings)


def write_report(path: Path, report: dict) -> None:
    with user_file(path) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2, default=str))


def _report_path(args: argparse.Namespace, inputs: tuple) -> Path | None:
    if not args.report:
        return None
    report_path = check_writable(args.report)
    if any(report_path.resolve() == Path(p).resolve() for p in (*inputs, args.output)):
        raise StyleError(f"{report_path}: the report would overwrite an input or the output")
    return report_path


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
    keep = [args.content, *args.styles, output, *([report_path] if report_path else [])]
    if args.weights and args.weights != "random":
        keep.append(args.weights)
    return check_folder(job, keep)


def _end_job(args: argparse.Namespace, job: Path, result, pieces) -> None:
    """Removes the finished job's own files (unless --keep-job; `pieces`: the mode's PIECES) and
    says which damaged pieces of a resumed job were made again."""
    from .jobs import remove_folder
    if result.remade:
        print(f"note: damaged job files were made again: {', '.join(result.remade)}", file=sys.stderr)
    if not args.keep_job and not remove_folder(job, pieces):
        print(f"note: {job} keeps files the job did not make; only the job's own were removed",
              file=sys.stderr)


@contextlib.contextmanager
def _resumable(job: Path, what: str):
    """Around a job's events: the progress bars put in the yielded list are closed at the end, and
    Ctrl-C becomes one line saying where the finished `what` are kept."""
    bars: list = []
    try:
        yield bars
    except KeyboardInterrupt:
        raise StyleError(f"interrupted; the finished {what} are kept in {job}: rerun with --resume "
                         f"to continue") from None
    finally:
        for bar in bars:
            bar.close()


def _warn_diverged(stop_reason: str) -> None:
    if stop_reason.startswith("diverged"):
        print(f"warning: {stop_reason}", file=sys.stderr)


def _write(args, output: Path, report_path: Path | None, image, report: dict, weights) -> None:
    from .images import save_image
    text = {"Software": "style_core", "style_core": {k: v for k, v in report.items() if k != "history"}}
    if not weights.trained:
        text["Warning"] = weights.source
    save_image(output, image, text)
    if report_path:
        write_report(report_path, {**report, "content": str(args.content),
                                   "styles": list(map(str, args.styles)), "output": str(output)})


def run_image(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .images import check_output_path, load_image
    from .transfer import stylize

    settings = from_values(ImageSettings, vars(args))
    inputs = (args.content, *args.styles)
    output = check_output_path(args.output, inputs)
    report_path = _report_path(args, inputs)
    content = load_image(args.content)
    styles = [load_image(s) for s in args.styles]
    weights = _weights(args, settings.backbone, settings.weights)
    total = sum(settings.scale_iterations)
    progress = tqdm(total=total, unit="step", disable=args.quiet, file=sys.stderr, dynamic_ncols=True)
    result = None
    with progress:
        for event in stylize(content, styles, settings, weights):
            progress.update(event.step - progress.n)
            progress.set_postfix(scale=f"{event.scale}/{event.scales}",
                                 loss=f"{event.losses.get('total', float('nan')):.4g}", refresh=False)
            result = event.result
    _write(args, output, report_path, result.image, result.report(), weights)
    _warn_diverged(result.stop_reason)
    if not args.quiet:
        final = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
        print(f"wrote {output} ({result.iterations} steps, {result.seconds:.1f} s; {final})",
              file=sys.stderr)
    return 0


def run_large(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .images import check_output_path, load_image
    from .large import PIECES, LargeSettings, stylize_large

    settings = from_values(LargeSettings, vars(args), image=from_values(ImageSettings, vars(args), skip=("size",)))
    inputs = (args.content, *args.styles)
    output = check_output_path(args.output, inputs)
    report_path = _report_path(args, inputs)
    job = _job_folder(args, output, report_path)
    content = load_image(args.content)
    styles = [load_image(s) for s in args.styles]
    weights = _weights(args, settings.image.backbone, settings.image.weights)
    bar, result = None, None
    with _resumable(job, "tiles") as bars:
        for event in stylize_large(content, styles, settings, weights, job=job, resume=args.resume):
            if event.stage == "tiles" and bar is None and not args.quiet:
                bar = tqdm(total=event.tiles_total, unit="tile", file=sys.stderr, dynamic_ncols=True,
                           desc=f"{event.shape[1]}x{event.shape[0]}")
                bars.append(bar)
            if bar is not None:
                bar.update(event.tiles_done - bar.n)
                bar.set_postfix(step=f"{event.step}/{event.steps}",
                                loss=f"{event.losses.get('total', float('nan')):.4g}", refresh=False)
            elif not args.quiet and event.step == 0:
                print(f"{event.stage}...", file=sys.stderr)
            result = event.result
    _write(args, output, report_path, result.image, result.report(), weights)
    _end_job(args, job, result, PIECES)
    _warn_diverged(result.stop_reason)
    if not args.quiet:
        resumed = f", {result.tiles_resumed} resumed" if result.tiles_resumed else ""
        print(f"wrote {output} ({result.image.shape[1]}x{result.image.shape[0]}, {len(result.layout)} "
              f"tiles{resumed}, {result.seconds:.1f} s)", file=sys.stderr)
    return 0


def run_photo(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .images import check_output_path, load_image
    from .photo import PhotoSettings, photo_image_settings, stylize_photo

    settings = from_values(PhotoSettings, vars(args),
                           image=from_values(ImageSettings, vars(args), make=photo_image_settings))
    inputs = (args.content, *args.styles)
    output = check_output_path(args.output, inputs)
    report_path = _report_path(args, inputs)
    content = load_image(args.content)
    styles = [load_image(s) for s in args.styles]
    weights = _weights(args, settings.image.backbone, settings.image.weights)
    result = None
    with tqdm(unit="step", disable=args.quiet, file=sys.stderr, dynamic_ncols=True) as progress:
        for event in stylize_photo(content, styles, settings, weights):
            progress.total = event.total
            progress.update(event.step - progress.n)
            progress.set_postfix(loss=f"{event.losses.get('total', float('nan')):.4g}", refresh=False)
            result = event.result
    _write(args, output, report_path, result.image, result.report(), weights)
    for k, stage in enumerate(result.stages, 1):  # a stage's divergence is said whichever stage it was
        _warn_diverged(stage.stop_reason + (f" (stage {k} of {len(result.stages)})" * (len(result.stages) > 1)))
    if not args.quiet:
        m = result.metrics
        print(f"wrote {output} ({sum(s.iterations for s in result.stages)} steps, {result.seconds:.1f} s; "
              f"affine residual {m['affine_residual']:.4f}, edge SSIM {m['edge_ssim']:.3f})", file=sys.stderr)
    return 0


def run_video(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .images import check_output_path, load_image
    from .video import PIECES, VideoSettings, frames_to_do, stylize_video, video_image_settings
    from .videoio import probe

    settings = from_values(VideoSettings, vars(args),
                           image=from_values(ImageSettings, vars(args), make=video_image_settings))
    inputs = (args.content, *args.styles)
    output = check_output_path(args.output, inputs, formats=(".mp4", ".gif"))
    report_path = _report_path(args, inputs)
    job = _job_folder(args, output, report_path)
    info = probe(args.content)
    frames_to_do(info, settings)  # a bad clip is refused before anything loads
    if info.variable_rate and not args.quiet:
        print(f"note: {args.content} has a variable frame rate; it is resampled to its average, "
              f"{float(info.fps):.3g} fps", file=sys.stderr)
    styles = [load_image(s) for s in args.styles]
    weights = _weights(args, settings.image.backbone, settings.image.weights)
    bar, result, rate = None, None, "-"
    with _resumable(job, "frames") as bars:
        for event in stylize_video(args.content, styles, settings, weights, output, job=job, resume=args.resume):
            if bar is None and not args.quiet:
                bar = tqdm(total=event.frames, unit="frame", file=sys.stderr, dynamic_ncols=True)
                bars.append(bar)
            if bar is not None:
                rate = f"{event.frames_per_minute:.1f}" if event.frames_per_minute else rate
                bar.update(event.frame - bar.n)
                bar.set_postfix(chunk=f"{event.chunk}/{event.chunks}", step=event.step,
                                frames_per_min=rate, refresh=False)
            result = event.result
    report = result.report()
    if report_path:
        write_report(report_path, {**report, "content": str(args.content), "styles": list(map(str, args.styles))})
    _end_job(args, job, result, PIECES)
    _warn_diverged(result.stop_reason)
    if not args.quiet:
        resumed = f", {result.frames_resumed} resumed" if result.frames_resumed else ""
        print(f"wrote {output} ({result.frames} frames at {float(result.fps):g} fps{resumed}, "
              f"{result.seconds:.1f} s; E_warp {result.warping_error:.3g}, later frames "
              f"{result.mean_later_iterations:.1f} steps on average)", file=sys.stderr)
    return 0


def _flag_of(name: str) -> str:
    """The flag of a setting that a library message names (--normalize for `normalization`)."""
    from .large import LargeSettings
    from .photo import PhotoSettings
    from .video import VideoSettings
    fields = {f.name: f for cls in (ImageSettings, LargeSettings, PhotoSettings, VideoSettings)
              for f in described(cls)}
    return flag(fields[name]) if name in fields else "--" + name.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return {"image": run_image, "large": run_large, "photo": run_photo, "video": run_video}[args.mode](args)
    except StyleError as e:
        print(f"error: {spelled(str(e), _flag_of)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
