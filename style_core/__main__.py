"""Command line: `python -m style_core {image,large,photo} CONTENT STYLE [STYLE ...] -o OUT.png [options]`.

A thin front end: it builds `ImageSettings`, loads images and weights, iterates `stylize` with a tqdm
bar, and writes the PNG (settings and losses in its text chunks) and an optional JSON report. Any
`StyleError` becomes one line `error: ...` and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from .errors import StyleError
from .files import check_writable, user_file
from .large import LARGE_MAX_SIZE
from .settings import BOUNDS, DEFAULT_LR, DEFAULT_STYLE_WEIGHT, INITS, OPTIMIZERS, PRESERVE_COLOR


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise StyleError(f"{message} (see --help)")


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m style_core", description="Neural style transfer studio (JAX).")
    modes = parser.add_subparsers(dest="mode", required=True, parser_class=_Parser)
    p = modes.add_parser("image", help="paint one content image in the style of one or more styles",
                         description="Gatys-style transfer of one image. Defaults follow the research "
                                     "deck and Gatys et al. (2015).")
    _image_options(p, size=512, size_help="longest side of the output in pixels (512)",
                   iterations_help="optimisation steps at the full size (coarser --scales take "
                                   "--coarse-iterations); 0 writes the initial image (300)")
    p = modes.add_parser("large", help="a print-size image, painted tile by tile without seams",
                         description="Large-image mode: the style targets are computed at the output's "
                                     "scale, a global pass at --base-size initialises every tile, tiles "
                                     "are blended with feathered overlaps. Finished tiles are kept in a "
                                     "job folder, so a stopped job continues with --resume.")
    _image_options(p, size=4096, size_help=f"longest side of the output in pixels (4096; at most "
                                           f"{LARGE_MAX_SIZE})",
                   iterations_help="optimisation steps of the global pass at its full size (300)")
    p.add_argument("--tile", type=int, default=512, help="tile side in pixels (512)")
    p.add_argument("--overlap", type=int, default=64, help="pixels shared by neighbouring tiles (64)")
    p.add_argument("--base-size", type=int, default=None,
                   help="longest side of the global pass whose result initialises the tiles (the tile "
                        "size); 0: no global pass, every tile starts as --init says")
    p.add_argument("--tile-iterations", type=int, default=None,
                   help="optimisation steps per tile (--iterations)")
    _job_options(p, "tiles")
    _photo_parser(modes)
    _video_parser(modes)
    return parser


def _job_options(p: argparse.ArgumentParser, what: str) -> None:
    """--job, --resume, --keep-job of the modes that keep finished `what` (tiles, frames) in a folder."""
    p.add_argument("--job", default=None,
                   help=f"job folder keeping finished {what} (OUTPUT.job); removed once the output is "
                        "written unless --keep-job")
    p.add_argument("--resume", action="store_true", help="continue the job in the job folder")
    p.add_argument("--keep-job", action="store_true", help="keep the job folder after a finished run")


def _video_parser(modes) -> None:
    from .video import DEFAULT_TEMPORAL_WEIGHT, MAX_VIDEO_FRAMES, MAX_VIDEO_SIZE, VIDEO_DEFAULTS
    p = modes.add_parser("video", help="a clip stylised frame by frame without flicker",
                         description="Video mode: each frame is image mode plus a temporal loss against the "
                                     "previous stylised frame warped along the input's optical flow (Ruder "
                                     "et al.), occluded pixels masked out; later frames start from that warp "
                                     "and stop early on --tol. Finished frames are kept in a job folder, so "
                                     "a stopped job continues with --resume.")
    _image_options(p, size=VIDEO_DEFAULTS["size"],
                   size_help=f"longest side of the stylised frames in pixels (%(default)s; at most {MAX_VIDEO_SIZE})",
                   iterations_help="steps of the first frame, and of each chunk's first (%(default)s)",
                   defaults={k: v for k, v in VIDEO_DEFAULTS.items() if k != "chunk"},
                   helps={"content": "input video (mp4, mov, webm, avi, mkv, gif)",
                          "output": "output video: .mp4 (H.264, the input's frame rate and audio) or .gif"})
    p.add_argument("--frame-iterations", type=int, default=None,
                   help="at most this many steps for each later frame (--iterations); --tol stops them sooner")
    p.add_argument("--temporal-weight", type=float, default=DEFAULT_TEMPORAL_WEIGHT,
                   help="tau, weight of the temporal loss (%(default)g); 0: every frame on its own")
    p.add_argument("--temporal", choices=("warp", "plain"), default="warp",
                   help="warp: the previous frame warped by optical flow, occlusions masked (Ruder et al.); "
                        "plain: the research deck's difference of consecutive frames (%(default)s)")
    p.add_argument("--long-term", type=int, default=0,
                   help="also keep frame t consistent with frame t-K (0: off)")
    p.add_argument("--start", type=float, default=0.0, help="seconds into the clip to start at (0)")
    p.add_argument("--duration", type=float, default=None, help="seconds to stylise (to the end)")
    p.add_argument("--max-frames", type=int, default=None,
                   help=f"at most this many frames (the limit is {MAX_VIDEO_FRAMES})")
    p.add_argument("--chunk", type=int, default=0,
                   help="frames per chunk: independent jobs, run in parallel on several devices (0: one chunk)")
    p.add_argument("--chunk-overlap", type=int, default=0,
                   help="frames shared by consecutive chunks, cross-faded in the output (0)")
    _job_options(p, "frames")


def _photo_parser(modes) -> None:
    from .matting import DEFAULT_EPSILON
    from .photo import (DEFAULT_PHOTO_WEIGHT, DEFAULT_SMOOTH_EPS, DEFAULT_SMOOTH_RADIUS, PHOTO_ADAM_LR,
                        PHOTO_DEFAULTS, PHOTO_STYLE_WEIGHT)
    p = modes.add_parser("photo", help="photorealistic transfer: the style's colours and light, the "
                                       "content's structure",
                         description="Photo mode (Luan et al. 2017): image mode plus gamma * L_photo, the "
                                     "matting Laplacian of the content, so that the output is locally an "
                                     "affine function of the content's colours. Defaults are the research "
                                     "deck's, per pixel (its sums were over a 512x512 image).")
    _image_options(p, size=512, size_help="longest side of the output in pixels (512)",
                   iterations_help="optimisation steps at the full size; with --two-stage, of the first "
                                   "stage (%(default)s)", defaults=PHOTO_DEFAULTS,
                   helps={"lr": f"learning rate; default {PHOTO_ADAM_LR:g} for adam (the deck's), else "
                                + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items() if k != "adam"),
                          "style_weight": f"alpha, weight of the style loss; default "
                                          f"{PHOTO_STYLE_WEIGHT:g} (paper, the deck's), "
                                          f"{DEFAULT_STYLE_WEIGHT['relative']:g} (relative)"})
    p.add_argument("--photo-weight", type=float, default=DEFAULT_PHOTO_WEIGHT,
                   help="gamma, weight of the matting-Laplacian term, per pixel (%(default).4g: the "
                        "deck's 100 over 512x512 pixels); 0 is plain image mode")
    p.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON,
                   help="matting Laplacian regulariser (%(default)g, as Levin et al.)")
    p.add_argument("--two-stage", action="store_true",
                   help="Luan et al.'s schedule: stylise without the term, then refine with it")
    p.add_argument("--refine-iterations", type=int, default=None,
                   help="steps of the second stage (--iterations)")
    p.add_argument("--smooth", action="store_true",
                   help="post-process with a guided filter on the content (removes painterly noise)")
    p.add_argument("--smooth-radius", type=int, default=DEFAULT_SMOOTH_RADIUS,
                   help="guided filter radius at 512 px, scaled with the size (%(default)s)")
    p.add_argument("--smooth-eps", type=float, default=DEFAULT_SMOOTH_EPS,
                   help="guided filter regulariser, squared colour units (%(default)g)")


def _image_options(p: argparse.ArgumentParser, size: int, size_help: str, iterations_help: str,
                   defaults: dict | None = None, helps: dict | None = None) -> None:
    """Inputs, output and every image-mode knob (image, large and photo mode share them); `defaults`
    and `helps` replace some image-mode defaults and their help (photo and video mode's)."""
    helps = helps or {}
    p.add_argument("content", help=helps.get("content", "content image (any format Pillow reads)"))
    p.add_argument("styles", nargs="+", metavar="style", help="one or more style images")
    p.add_argument("-o", "--output", required=True,
                   help=helps.get("output", "output image (.png keeps the settings inside)"))
    p.add_argument("--size", type=int, default=size, help=size_help)
    p.add_argument("--iterations", type=int, default=300, help=iterations_help)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs", help="; ".join(
        f"{name}: {o.description}" for name, o in OPTIMIZERS.items()) + " (%(default)s)")
    p.add_argument("--lr", type=float, default=None, help=helps.get(
        "lr", "learning rate; default " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items())))
    p.add_argument("--content-weight", type=float, default=1.0,
                   help="beta, weight of the content loss (%(default)g)")
    p.add_argument("--style-weight", type=float, default=None, help=helps.get(
        "style_weight", "alpha, weight of the style loss; default " +
                        ", ".join(f"{v:g} ({k})" for k, v in DEFAULT_STYLE_WEIGHT.items())))
    p.add_argument("--tv-weight", type=float, default=0.0,
                   help="delta, weight of total variation, a mean over pixels (%(default).4g)")
    p.add_argument("--content-layers", default="",
                   help="content layers, comma separated, optional name:weight (relu4_2 for VGG)")
    p.add_argument("--style-layers", default="paper",
                   help="'paper' (relu1_1..relu5_1), 'first5' (conv1_1..conv3_1) or names[:weight] (paper)")
    p.add_argument("--backbone", default="vgg19",
                   help="vgg19, vgg16, resnet18, resnet34 or resnet50 (vgg19)")
    p.add_argument("--pooling", choices=("max", "avg"), default="max",
                   help="VGG pooling; Gatys et al. prefer avg (max)")
    p.add_argument("--init", choices=INITS, default="content", help="starting image (%(default)s)")
    p.add_argument("--loss", default="mse",
                   help="penalty: mse, l1, huber or smooth_l1; huber and smooth_l1 are the same at "
                        "delta = beta = 1 (mse)")
    p.add_argument("--huber-delta", type=float, default=1.0, help="delta of huber / beta of smooth_l1 (1)")
    p.add_argument("--normalize", default="paper",
                   help="'paper': the formulas of README's 'The losses' (Gatys et al.), the default; "
                        "'relative': each layer's term divided by mean(rho(target)), so a weight means the "
                        "same on every backbone, layer and image size (paper)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise init (0)")
    p.add_argument("--preserve-color", choices=PRESERVE_COLOR, default="none",
                   help="keep the content's colours: luminance-only transfer or style recolouring (none)")
    p.add_argument("--style-blend", type=_floats, default=None,
                   help="blend weights of the style images, e.g. 0.7,0.3 (equal)")
    p.add_argument("--style-scale", type=float, default=1.0,
                   help="style image's longest side relative to the output's (1)")
    p.add_argument("--scales", type=int, default=None,
                   help="coarse-to-fine passes, each twice the size of the last (image and large mode: 2 "
                        "from 256 px up, else 1; photo and video mode: 1)")
    p.add_argument("--coarse-iterations", type=int, default=None,
                   help="steps at each coarser scale (a quarter of --iterations)")
    p.add_argument("--tol", type=float, default=None,
                   help="stop a scale once the loss falls by less than this fraction per step, "
                        "measured over at least 5 steps (lbfgs 1e-4, the others 0; 0: run every step)")
    p.add_argument("--bounds", choices=BOUNDS, default="box",
                   help="L-BFGS: 'box' keeps the image in [0, 1] while optimising, as L-BFGS-B does; "
                        "'none' lets it leave and clips it when saved, as the classic scripts do (%(default)s)")
    p.add_argument("--preview-every", type=int, default=50, help="steps between previews (50)")
    p.add_argument("--weights", default=None,
                   help="local model.safetensors in torchvision layout, or 'random' (untrained, for "
                        "tests); default $STYLE_CORE_WEIGHTS, the cache, then the Hugging Face Hub")
    p.add_argument("--report", default=None, help="write a JSON report of the run to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    if defaults:
        p.set_defaults(**defaults)


def settings_from_args(args: argparse.Namespace, make=None):
    """The image-mode settings of the options; `make` builds them (photo mode's own defaults)."""
    from .settings import ImageSettings
    return (make or ImageSettings)(
        size=args.size, iterations=args.iterations, optimizer=args.optimizer, lr=args.lr,
        content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
        content_layers=args.content_layers, style_layers=args.style_layers, backbone=args.backbone,
        pooling=args.pooling, init=args.init, loss=args.loss, huber_delta=args.huber_delta,
        normalization=args.normalize, seed=args.seed, preserve_color=args.preserve_color,
        style_blend=args.style_blend, style_scale=args.style_scale, scales=args.scales,
        coarse_iterations=args.coarse_iterations, tol=args.tol, bounds=args.bounds,
        preview_every=args.preview_every, weights=args.weights)


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


def _end_job(args: argparse.Namespace, job: Path, result, files) -> None:
    """Removes the finished job's own files (unless --keep-job; `files`: the mode's `Job.FILES`) and
    says which damaged pieces of a resumed job were made again."""
    from .jobs import remove_folder
    if result.remade:
        print(f"note: damaged job files were made again: {', '.join(result.remade)}", file=sys.stderr)
    if not args.keep_job and not remove_folder(job, files):
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

    settings = settings_from_args(args)
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
    from .large import Job, LargeSettings, stylize_large

    size = args.size
    args.size = 512  # the image-mode settings' own size is replaced by --base-size
    settings = LargeSettings(settings_from_args(args), size=size, tile=args.tile, overlap=args.overlap,
                             base_size=args.base_size, tile_iterations=args.tile_iterations)
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
    _end_job(args, job, result, Job.FILES)
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

    settings = PhotoSettings(settings_from_args(args, photo_image_settings), photo_weight=args.photo_weight, epsilon=args.epsilon,
                             two_stage=args.two_stage, refine_iterations=args.refine_iterations,
                             smooth=args.smooth, smooth_radius=args.smooth_radius, smooth_eps=args.smooth_eps)
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
    from .video import Job, VideoSettings, frames_to_do, stylize_video, video_image_settings
    from .videoio import probe

    settings = VideoSettings(settings_from_args(args, video_image_settings), temporal_weight=args.temporal_weight,
                             temporal=args.temporal, frame_iterations=args.frame_iterations,
                             long_term=args.long_term, start=args.start, duration=args.duration,
                             max_frames=args.max_frames, chunk=args.chunk, chunk_overlap=args.chunk_overlap)
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
    _end_job(args, job, result, Job.FILES)
    _warn_diverged(result.stop_reason)
    if not args.quiet:
        resumed = f", {result.frames_resumed} resumed" if result.frames_resumed else ""
        print(f"wrote {output} ({result.frames} frames at {float(result.fps):g} fps{resumed}, "
              f"{result.seconds:.1f} s; E_warp {result.warping_error:.3g}, later frames "
              f"{result.mean_later_iterations:.1f} steps on average)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return {"image": run_image, "large": run_large, "photo": run_photo, "video": run_video}[args.mode](args)
    except StyleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
