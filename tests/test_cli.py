"""The command line: a run on the bundled example, --help, and one `error:` line for each bad input."""

from __future__ import annotations

import io
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from style_core.__main__ import build_parser, main
from style_core.images import read_png_text

ROOT = Path(__file__).resolve().parent.parent
CONTENT, STYLE = ROOT / "assets" / "content.png", ROOT / "assets" / "style.png"
FAST = ["--size", "32", "--style-layers", "relu1_1,relu2_1,relu3_1", "--content-layers", "relu2_2"]


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_stylises_the_bundled_example_and_writes_png_and_report(tmp_path, capsys, weight_files):
    out, report = tmp_path / "out.png", tmp_path / "run.json"
    code, _, err = cli(capsys, "image", CONTENT, STYLE, "-o", out, "--size", 48, "--iterations", 20,
                       "--weights", weight_files("vgg19"), "--report", report, "--quiet")
    assert code == 0, err
    assert Image.open(out).size == (48, 36)
    meta = json.loads(read_png_text(out)["style_core"])
    assert meta["settings"]["size"] == 48 and meta["settings"]["optimizer"] == "lbfgs"
    assert meta["final_losses"]["total"] < meta["initial_losses"]["total"]
    data = json.loads(report.read_text())
    assert data["iterations"] == 20 and data["backbone"] == "vgg19" and data["trained_weights"]
    assert data["weights_source"].startswith("file:") and data["seconds"] > 0
    assert data["history"][0]["step"] <= data["history"][-1]["step"] == 20
    assert {"total", "content", "style", "tv"} <= set(data["initial_losses"])


def test_zero_iterations_writes_the_init_image(tmp_path, capsys, weight_files):
    out, report = tmp_path / "init.png", tmp_path / "init.json"
    code, _, err = cli(capsys, "image", CONTENT, STYLE, "-o", out, *FAST, "--iterations", 0,
                       "--weights", weight_files("vgg19"), "--report", report, "--quiet")
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["iterations"] == 0 and data["initial_losses"] == data["final_losses"]
    written = np.asarray(Image.open(out), np.float32) / 255
    expected = np.asarray(Image.open(CONTENT).resize((32, 24), Image.Resampling.LANCZOS), np.float32) / 255
    assert np.abs(written - expected).mean() < 0.02


def test_untrained_weights_are_labelled(tmp_path, capsys):
    out = tmp_path / "r.png"
    code, _, err = cli(capsys, "image", CONTENT, STYLE, "-o", out, *FAST, "--iterations", 1,
                       "--weights", "random", "--quiet")
    assert code == 0 and "UNTRAINED" in err
    assert "UNTRAINED" in read_png_text(out)["Warning"]


@pytest.mark.parametrize("mode", ["image", "large", "photo", "video"])
def test_help_documents_every_flag(mode, capsys):
    with pytest.raises(SystemExit) as e:
        main([mode, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    mode_parser = build_parser()._subparsers._group_actions[0].choices[mode]
    flags = [a.option_strings[-1] for a in mode_parser._actions if a.option_strings]
    assert len(flags) > 25
    for flag in flags:
        assert re.search(re.escape(flag) + r"\b.*\S", text), flag
    for action in mode_parser._actions:
        assert action.help, action.option_strings


def _bad_file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


BAD = {
    "missing content": (lambda t: ["image", t / "nope.png", STYLE, "-o", t / "o.png"], "no such file"),
    "text as jpg": (lambda t: ["image", _bad_file(t, "a.jpg", b"hello"), STYLE, "-o", t / "o.png"],
                    "not an image"),
    "truncated jpeg": (lambda t: ["image", _bad_file(t, "c.jpg", (ROOT / "assets" / "content.png").read_bytes()[:500]),
                                  STYLE, "-o", t / "o.png"], "damaged or truncated"),
    "unknown backbone": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--backbone", "alexnet"],
                         "unknown backbone 'alexnet'; choose one of"),
    "unknown layer": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--style-layers", "relu9_9"],
                      "unknown layer 'relu9_9' for vgg19; valid layers: conv1_1"),
    "negative weight": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--style-weight", "-1"],
                        "style weight must be a finite number >= 0"),
    "nan weight": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--content-weight", "nan"],
                   "content weight must be a finite number"),
    "zero size": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--size", "0"],
                  "size must be at least 1"),
    "negative size": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--size", "-5"],
                      "size must be at least 1"),
    "size too small for the net": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--size", "8"],
                                   "downsamples by 16"),
    "word as size": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--size", "big"],
                     "invalid int value"),
    "missing folder": (lambda t: ["image", CONTENT, STYLE, "-o", t / "no" / "o.png"], "does not exist"),
    "output is the input": (lambda t: ["image", CONTENT, STYLE, "-o", STYLE], "overwrite the input"),
    "unknown optimizer": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--optimizer", "newton"],
                          "unknown optimizer 'newton'; choose one of lbfgs"),
    "zero learning rate": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--lr", "0"],
                           "learning rate must be a finite number > 0"),
    "bad blend": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--style-blend", "a,b"],
                  "expected numbers"),
    "missing weights file": (lambda t: ["image", CONTENT, STYLE, "-o", t / "o.png", "--weights", t / "w.st"],
                             "no such file"),
    "no mode": (lambda t: [], "required"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_one_error_line_and_exit_2(case, tmp_path, capsys):
    make_args, message = BAD[case]
    before = STYLE.read_bytes()
    code, out, err = cli(capsys, *make_args(tmp_path))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert STYLE.read_bytes() == before
    assert not (tmp_path / "o.png").exists()


def test_no_weights_anywhere_is_one_clear_line(tmp_path, capsys):
    code, _, err = cli(capsys, "image", CONTENT, STYLE, "-o", tmp_path / "o.png", *FAST)
    assert code == 2 and err.count("\n") == 1
    assert "no ImageNet weights for vgg19" in err and "--weights PATH" in err
    assert not (tmp_path / "o.png").exists()


def test_greyscale_and_rgba_inputs_work(tmp_path, capsys, weight_files):
    Image.open(CONTENT).convert("L").save(tmp_path / "grey.png")
    Image.open(STYLE).convert("RGBA").save(tmp_path / "rgba.png")
    code, _, err = cli(capsys, "image", tmp_path / "grey.png", tmp_path / "rgba.png", "-o", tmp_path / "o.png",
                       *FAST, "--iterations", 2, "--weights", weight_files("vgg19"), "--quiet")
    assert code == 0, err and Image.open(tmp_path / "o.png").mode == "RGB"


def test_module_entry_point_runs_as_a_program(tmp_path):
    done = subprocess.run([sys.executable, "-m", "style_core", "image", str(CONTENT), str(STYLE), "-o",
                           str(tmp_path / "o.png"), "--size", "-1"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "error: size must be at least 1, not -1"


def test_a_second_run_reads_the_compiled_code_the_first_kept(tmp_path, weight_files):
    """The CLI keeps compiled code in STYLE_CORE_CACHE/xla; the same run in a new process finds it there
    (JAX says each hit when it logs compilations) instead of compiling again."""
    env = {**os.environ, "STYLE_CORE_CACHE": str(tmp_path / "cache"), "STYLE_CORE_COMPILE_CACHE": "on",
           "JAX_LOG_COMPILES": "1"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    args = [sys.executable, "-m", "style_core", "image", str(CONTENT), str(STYLE), "-o", str(tmp_path / "o.png"),
            *map(str, FAST), "--iterations", "1", "--weights", str(weight_files("vgg19")), "--quiet"]
    runs = [subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:]
    assert any((tmp_path / "cache" / "xla").iterdir())
    hits = [r.stderr.count("compilation cache hit") for r in runs]
    assert hits[0] == 0 and hits[1] > 0, hits


LARGE = ["--style-layers", "relu1_1,relu2_1,relu3_1", "--content-layers", "relu2_2", "--optimizer", "adam",
         "--iterations", 3, "--tile", 40, "--overlap", 8, "--base-size", 32]


def test_large_writes_the_canvas_and_cleans_up_its_job(tmp_path, capsys, weight_files):
    out, report = tmp_path / "big.png", tmp_path / "big.json"
    code, _, err = cli(capsys, "large", CONTENT, STYLE, "-o", out, "--size", 96, *LARGE,
                       "--weights", weight_files("vgg19"), "--report", report)
    assert code == 0, err
    assert Image.open(out).size == (96, 72) and "wrote" in err and "6 tiles" in err
    meta = json.loads(read_png_text(out)["style_core"])
    assert meta["mode"] == "large" and meta["tiles"] == 6 and meta["settings"]["tile"] == 40
    assert len(json.loads(report.read_text())["tile_losses"]) == 6
    assert not (tmp_path / "big.png.job").exists()


def test_large_keeps_its_job_and_refuses_to_clobber_it(tmp_path, capsys, weight_files):
    out, job = tmp_path / "big.png", tmp_path / "myjob"
    args = ["large", CONTENT, STYLE, "-o", out, "--size", 96, *LARGE, "--weights", weight_files("vgg19"),
            "--job", job, "--keep-job", "--quiet"]
    assert cli(capsys, *args)[0] == 0
    assert len(list((job / "tiles").glob("*.npz"))) == 6
    first = out.read_bytes()
    code, _, err = cli(capsys, *args)
    assert code == 2 and err.strip().endswith("pass --resume to continue it, or choose another folder")
    assert err.count("\n") == 1 and out.read_bytes() == first
    code, _, err = cli(capsys, *args, "--resume")  # every tile is done: nothing is optimised again
    assert code == 0 and json.loads(read_png_text(out)["style_core"])["tiles_resumed"] == 6
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(io.BytesIO(first))))


@pytest.mark.parametrize("extra,message", [
    (["--tile", 3, "--overlap", 1], r"tile 3 px is smaller than vgg19 up to relu3_1 needs \(4 px\)"),
    (["--overlap", 40], r"overlap \(40 px\) must be smaller than the tile \(40 px\)"),
    (["--size", 30000], "over large mode's limit of 16384 px"),
])
def test_large_bad_settings_are_one_line(extra, message, tmp_path, capsys):
    code, _, err = cli(capsys, "large", CONTENT, STYLE, "-o", tmp_path / "x.png", *LARGE, *extra,
                       "--weights", "random")
    assert code == 2 and re.search(message, err) and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_photo_writes_the_output_with_its_metrics(tmp_path, capsys, weight_files):
    out, report = tmp_path / "photo.png", tmp_path / "photo.json"
    code, _, err = cli(capsys, "photo", CONTENT, STYLE, "-o", out, *FAST, "--iterations", 6, "--two-stage",
                       "--refine-iterations", 4, "--smooth", "--weights", weight_files("vgg19"),
                       "--report", report)
    assert code == 0, err
    assert "affine residual" in err and "edge SSIM" in err
    data = json.loads(report.read_text())
    assert data["mode"] == "photo" and data["iterations"] == 10 and len(data["stages"]) == 2
    assert data["settings"]["image"]["optimizer"] == "adam" and data["settings"]["image"]["lr"] == 0.01
    assert data["settings"]["image"]["style_weight"] == 10.0 and data["settings"]["two_stage"]
    assert "photo" in data["final_losses"] and 0 <= data["metrics"]["affine_residual"] <= 1
    assert Image.open(out).size == (32, 24)


def test_photo_keeps_image_mode_defaults_for_other_optimizers(tmp_path, capsys, weight_files):
    report = tmp_path / "r.json"
    code, _, err = cli(capsys, "photo", CONTENT, STYLE, "-o", tmp_path / "o.png", *FAST, "--iterations", 2,
                       "--optimizer", "lbfgs", "--normalize", "paper", "--weights", "random",
                       "--report", report, "--quiet")
    assert code == 0, err
    settings = json.loads(report.read_text())["settings"]["image"]
    assert settings["lr"] == 1.0 and settings["style_weight"] == 40.0 and settings["normalization"] == "paper"


@pytest.mark.parametrize("extra,message", [
    (["--epsilon", "0"], "matting epsilon must be a finite number > 0"),
    (["--photo-weight", "-5"], "photorealism weight must be a finite number >= 0"),
    (["--tv-weight", "-1"], "tv weight must be a finite number >= 0"),
    (["--smooth-radius", "0"], "smoothing radius must be at least 1"),
])
def test_photo_bad_settings_are_one_line(extra, message, tmp_path, capsys):
    code, _, err = cli(capsys, "photo", CONTENT, STYLE, "-o", tmp_path / "x.png", *FAST, *extra,
                       "--weights", "random")
    assert code == 2 and message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from tests.synthetic import pan, write_clip
    path = tmp_path_factory.mktemp("clip") / "pan.mp4"
    write_clip(path, pan(24, 32, 5, 1), audio=True)
    return path


def test_video_writes_the_clip_with_its_audio_and_cleans_up(clip, tmp_path, capsys, weight_files):
    from style_core.videoio import probe
    out, report = tmp_path / "out.mp4", tmp_path / "video.json"
    code, _, err = cli(capsys, "video", clip, STYLE, "-o", out, *FAST, "--iterations", 8, "--max-frames", 3,
                       "--weights", weight_files("vgg19"), "--report", report)
    assert code == 0, err
    assert "3 frames at 12 fps" in err and "E_warp" in err
    info = probe(out)
    assert (info.frames, info.fps, info.has_audio) == (3, 12, True)
    data = json.loads(report.read_text())
    assert data["mode"] == "video" and len(data["iterations_per_frame"]) == 3
    assert data["settings"]["image"]["optimizer"] == "lbfgs" and data["settings"]["image"]["tol"] == 1e-3
    assert not (tmp_path / "out.mp4.job").exists()


@pytest.mark.parametrize("make, extra, message", [
    (lambda t: _bad_file(t, "v.mp4", b"\x00" * 100), [], "not a video FFmpeg can read"),
    (lambda t: t / "none.mp4", [], "no such file"),
    (None, ["--chunk", "3", "--chunk-overlap", "3"], "must be smaller than the chunk"),
    (None, ["--start", "60"], "past the clip's end"),
])
def test_video_bad_input_is_one_line(make, extra, message, clip, tmp_path, capsys):
    source = make(tmp_path) if make else clip
    code, _, err = cli(capsys, "video", source, STYLE, "-o", tmp_path / "o.mp4", *FAST, *extra, "--weights", "random")
    assert code == 2 and re.search(message, err) and err.count("\n") == 1
    assert not (tmp_path / "o.mp4").exists()


def test_video_output_must_be_mp4_or_gif(clip, tmp_path, capsys):
    code, _, err = cli(capsys, "video", clip, STYLE, "-o", tmp_path / "o.png", "--weights", "random")
    assert code == 2 and ".mp4, .gif" in err


def test_photo_warns_when_any_stage_diverged(tmp_path, capsys, weight_files, monkeypatch):
    """Review B10: two-stage photo mode warned only when its last stage diverged."""
    import dataclasses

    from style_core import photo
    real = photo.stylize_photo

    def first_stage_diverges(*args, **kwargs):
        for event in real(*args, **kwargs):
            if event.result is not None:
                stages = event.result.stages
                bad = dataclasses.replace(stages[0], stop_reason="diverged: the loss rose to nan")
                event = dataclasses.replace(event, result=dataclasses.replace(event.result,
                                                                             stages=(bad, *stages[1:])))
            yield event
    monkeypatch.setattr(photo, "stylize_photo", first_stage_diverges)
    code, _, err = cli(capsys, "photo", CONTENT, STYLE, "-o", tmp_path / "o.png", *FAST, "--iterations", 2,
                       "--two-stage", "--refine-iterations", 2, "--weights", weight_files("vgg19"), "--quiet")
    assert code == 0, err
    assert "warning: diverged: the loss rose to nan (stage 1 of 2)" in err


def _stopped_by_ctrl_c(argv: list, tmp_path: Path, started: str) -> tuple[int, str, float]:
    """Issue 32.6: a real CLI process, sent SIGINT once its stderr shows `started` (it is working);
    its exit status, stderr and the seconds it took to end after the signal (killed past 90 s)."""
    import signal
    import threading
    import time
    env = {**os.environ, "STYLE_CORE_COMPILE_CACHE": "off", "STYLE_CORE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "style_core", *map(str, argv)], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True)
    err, seen = [], threading.Event()

    def read() -> None:  # tqdm's bar ends its updates with \r: read characters, not lines
        while ch := proc.stderr.read(1):
            err.append(ch)
            if started in "".join(err[-200:]):
                seen.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert seen.wait(180), "".join(err)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    took = time.monotonic() - sent
    reader.join(10)
    return proc.returncode, "".join(err), took


@pytest.mark.parametrize("mode", ["image", "large"])
def test_ctrl_c_ends_every_mode_promptly_with_130(mode, tmp_path, weight_files):
    """Issue 32.6: Ctrl-C once the run is at work ends it within seconds, exit status 130 in every mode
    (large mode gave 2), one line saying it stopped, no traceback and nothing JAX swallowed; large
    mode keeps its job for --resume, image mode writes nothing."""
    out = tmp_path / "out.png"
    common = [CONTENT, STYLE, "-o", out, "--weights", weight_files("vgg19"), "--optimizer", "adam"]
    argv, started = (["image", *common, *FAST[2:], "--size", 48, "--iterations", 1000], "step/s]") if mode == "image" \
        else (["large", *common, "--size", 96, "--tile", 48, "--overlap", 8, "--base-size", 32, "--iterations", 400],
              "global pass...")
    code, err, took = _stopped_by_ctrl_c(argv, tmp_path, started)
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip()]
    assert code == 130 and took < 30, (code, took, err[-2000:])
    assert lines[-1].startswith("error: stopped;") and sum(line.startswith("error:") for line in lines) == 1, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert not out.exists()
    if mode == "large":
        assert "rerun with --resume" in lines[-1] and (tmp_path / "out.png.job" / "job.json").exists()


def test_a_second_ctrl_c_ends_the_process_at_once(monkeypatch, capsys):
    """Issue 32.6: the first Ctrl-C while a mode's events are followed only asks the run to stop (it
    ends at its next event); a second one ends the process there and then, status 130."""
    from style_core.__main__ import CtrlC
    ended = []
    monkeypatch.setattr(os, "_exit", lambda status: ended.append(status))
    ctrl_c = CtrlC()
    ctrl_c.following = True
    ctrl_c(2, None)
    assert ctrl_c.stop.is_set() and not ended
    ctrl_c(2, None)
    assert ended == [130] and "error: stopped at once" in capsys.readouterr().err
    with pytest.raises(KeyboardInterrupt):   # outside the events: the usual KeyboardInterrupt
        CtrlC()(2, None)
