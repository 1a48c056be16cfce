"""The Gradio studio, launched in this process on a free port and driven like a user would:
gradio_client for the API, headless Chromium (Playwright, system browser) for the page."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

import app  # noqa: E402
from style_core.weights import load_weights  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONTENT, STYLE = str(ROOT / "assets" / "content.png"), str(ROOT / "assets" / "style.png")
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(weight_files, tmp_path_factory):
    """The app with the generated vgg19 weights (trained=True, real layout) already loaded, and its
    own temporary folder (runs and cached examples)."""
    app._weights["vgg19"] = load_weights("vgg19", weight_files("vgg19"))
    runs, app.RUNS = app.RUNS, tmp_path_factory.mktemp("runs")
    # The example at 64 px and 40 steps instead of 256 px and 100: a minute less of CI.
    example = dict(app.EXAMPLE_SETTINGS)
    app.EXAMPLE_SETTINGS.update(size=64, iterations=40)
    demo = app.build(dict(size=64, iterations=20))
    port = free_port()
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
    app._weights.clear()
    app.RUNS = runs
    app.EXAMPLE_SETTINGS.update(example)


def image_args(content=CONTENT, styles=(STYLE,), size=64, iterations=20, **kw):
    values = dict(style_strength=5, preserve_color="none", blend="", backbone="vgg19", style_layers="paper",
                  content_layers="", optimizer="adam", lr=None, loss="mse", normalize="paper", init="content",
                  content_weight=1.0, tv_weight=0.0, scales=1, seed=0, bounds="box")
    values.update(kw)
    return [handle_file(content), [handle_file(s) for s in styles], size, iterations, *values.values()]


def test_image_endpoint_streams_previews_and_returns_the_png(server):
    client = Client(server, verbose=False)
    job = client.submit(*image_args(size=64, iterations=60), api_name="/stylize")
    preview, png, compare, curve, info = job.result(timeout=300)
    assert len(job.outputs()) > 1  # previews streamed before the result
    assert Image.open(preview).size == (64, 48)
    assert Image.open(png).format == "PNG" and "style_core" in Image.open(png).text
    assert "60 steps" in info and "finished" in info and "UNTRAINED" not in info
    assert len(compare) == 2 and curve


def test_untrained_weights_are_labelled_on_the_result(server, monkeypatch):
    monkeypatch.setitem(app._weights, "vgg16", load_weights("vgg16", "random"))
    client = Client(server, verbose=False)
    *_, png, _, _, info = client.predict(*image_args(backbone="vgg16", iterations=2, bounds="none"),
                                         api_name="/stylize")
    assert "UNTRAINED" in info and "UNTRAINED" in Image.open(png).text["Warning"]
    assert json.loads(Image.open(png).text["style_core"])["settings"]["bounds"] == "none"


def test_stop_ends_a_long_job_keeps_its_picture_and_frees_the_queue(server):
    client = Client(server, verbose=False)
    job = client.submit(*image_args(size=96, iterations=1000), api_name="/stylize")
    deadline = time.time() + 120
    while not any(isinstance(out[0], str) for out in job.outputs()) and time.time() < deadline:
        time.sleep(0.2)
    assert any(isinstance(out[0], str) for out in job.outputs()), "no preview arrived"
    client.predict(api_name="/stop_stylize")  # the Stop button: same session, not a cancel
    preview, png, _, _, info = job.result(timeout=30)
    assert "Stopped after" in info and 'data-state="stopped"' in info
    assert Image.open(png).size == Image.open(preview).size == (96, 72)
    # The queue runs one optimisation at a time: a short job finishing quickly proves the long one stopped.
    start = time.time()
    client.predict(*image_args(size=48, iterations=2), api_name="/stylize")
    assert time.time() - start < 60


@pytest.mark.parametrize("make_args,message", [
    (lambda tmp: image_args(content=str(tmp)), "not an image file"),
    (lambda tmp: image_args(size=8), "less than minimum value 32"),
    (lambda tmp: image_args(size=32, scales=3), "coarsest of 3 scales is 8 px, but vgg19 up to relu5_1 downsamples by 16"),
    (lambda tmp: image_args(blend="a,b"), "style blend weights must be numbers"),
    (lambda tmp: image_args(style_layers="relu9_9"), "unknown layer 'relu9_9'"),
    (lambda tmp: image_args(content_weight=-1), "content weight must be a finite number >= 0"),
    # values no page sends, from the API: one readable line, no traceback (issue 21, 7)
    (lambda tmp: image_args(size="abc"), "Size (px): 'abc' is not a number"),
    (lambda tmp: image_args(lr="abc"), "Learning rate: 'abc' is not a number"),
    (lambda tmp: image_args()[:1] + ["hello"] + image_args()[2:], "expected a list of uploaded files: Input should be a valid list (got 'hello')"),
    (lambda tmp: image_args(seed=1e30, init="noise"), "greater than maximum value 4294967295"),
])
def test_bad_input_comes_back_as_a_readable_error(server, tmp_path, make_args, message):
    text_file = tmp_path / "notes.png"
    text_file.write_text("not a picture")
    client = Client(server, verbose=False)
    with pytest.raises(Exception) as e:
        client.predict(*make_args(text_file), api_name="/stylize")
    assert message in str(e.value)


def test_two_clients_at_once_each_get_their_own_result(server):
    results = {}

    def run(size):
        client = Client(server, verbose=False)
        preview, *_ = client.predict(*image_args(size=size, iterations=5), api_name="/stylize")
        results[size] = Image.open(preview).size

    threads = [threading.Thread(target=run, args=(size,)) for size in (48, 80)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert results == {48: (48, 36), 80: (80, 60)}


def test_explore_study_grid_grows_cell_by_cell(server):
    client = Client(server, verbose=False)
    job = client.submit("loss", None, None, 32, 10, api_name="/explore")
    grid, curves, info = job.result(timeout=300)
    assert [cell["caption"].split(" ·")[0] for cell in grid] == ["huber", "l1", "mse", "smooth_l1"]
    assert len(job.outputs()) >= 4 and "4 cells in" in info
    assert Image.open(grid[0]["image"]).size == (32, 24) and "32x24 px" in grid[0]["caption"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def page(server):
    """A headless Chromium page on the studio (system browser, no download)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    browser_path = _chromium()
    if not browser_path:
        pytest.skip("no Chromium on this machine (.ci/run installs it with apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=flags)
        yield browser.new_page(viewport={"width": 1400, "height": 1100})
        browser.close()


def test_browser_upload_run_and_see_the_result(server, page):
    """Headless Chromium: upload two images, click Run, wait for the result, keep a screenshot."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(server)
    page.locator("#content input[type=file]").set_input_files(CONTENT)
    page.locator("#styles input[type=file]").set_input_files(STYLE)
    page.wait_for_timeout(1500)  # let the uploads finish
    page.locator("#run").click()
    page.locator("#result img").wait_for(state="visible", timeout=180_000)
    page.get_by_text("finished").first.wait_for(timeout=180_000)
    page.screenshot(path=str(ARTIFACTS / "studio-image-tab.png"), full_page=True)
    src = page.locator("#result img").get_attribute("src")
    assert src and (ARTIFACTS / "studio-image-tab.png").stat().st_size > 10_000


def test_without_weights_the_app_runs_and_run_explains_what_is_missing(server):
    """No weights for vgg16 anywhere (offline, empty caches): a clear error on Run, for a browser user
    (no command-line flags), not a crash."""
    app._weights.pop("vgg16", None)
    client = Client(server, verbose=False)
    with pytest.raises(Exception) as e:
        client.predict(*image_args(backbone="vgg16", iterations=2), api_name="/stylize")
    message = str(e.value)
    assert "vgg16 network's ImageNet weights" in message and "upload a model.safetensors" in message
    assert "--" not in message and "STYLE_CORE_WEIGHTS" not in message
    preview, *_ = client.predict(*image_args(iterations=2), api_name="/stylize")  # still serving
    assert Image.open(preview).size == (64, 48)


def test_files_outside_the_app_folders_are_not_served(server):
    import urllib.error
    import urllib.request
    for path in ("/etc/passwd", str(ROOT / "app.py"), str(ROOT / "README.md")):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{server}gradio_api/file={path}", timeout=10)
        assert e.value.code in (403, 404)
    with urllib.request.urlopen(f"{server}gradio_api/file={ROOT / 'assets' / 'style.png'}", timeout=10) as r:
        assert r.status == 200


def test_browser_example_is_computed_once_then_cached(server, page):
    page.goto(server)
    page.get_by_text("style2.png").first.click()
    page.get_by_text("100 steps").first.wait_for(timeout=400_000)
    page.reload()
    start = time.time()
    page.get_by_text("style2.png").first.click()
    page.get_by_text("100 steps").first.wait_for(timeout=30_000)
    assert time.time() - start < 10  # from the cache, not another optimisation


def test_large_endpoint_streams_the_canvas_with_its_grid(server):
    client = Client(server, verbose=False)
    args = [handle_file(CONTENT), [handle_file(STYLE)], 256, 128, 16, 4, 3, 5, "none", "adam", 64]
    job = client.submit(*args, api_name="/large")
    preview, png, info = job.result(timeout=300)
    shown = [out[0] for out in job.outputs()[:-1] if isinstance(out[0], str)]
    assert len(shown) >= 6  # the canvas after every tile
    grid = np.asarray(Image.open(shown[-2]))
    assert (np.abs(grid.astype(int) - [255, 140, 0]).sum(axis=2) < 30).any()  # the current tile, outlined
    assert Image.open(png).size == (256, 192) and "style_core" in Image.open(png).text
    assert "6 tiles" in info and "UNTRAINED" not in info
    assert not list((app.RUNS / "large-jobs").iterdir())  # a finished job's folder is removed
    with pytest.raises(Exception, match="overlap \\(128 px\\) must be smaller than the tile \\(128 px\\)"):
        client.predict(*args[:4], 128, *args[5:], api_name="/large")


def test_photo_endpoint_streams_and_compares_three_ways(server):
    client = Client(server, verbose=False)
    args = [handle_file(CONTENT), [handle_file(STYLE)], 64, 40, 6, 7.41, 2.0, "none", False, 10,
            True, True, "adam", 1e-7]
    job = client.submit(*args, api_name="/photo")
    preview, png, gallery, info = job.result(timeout=300)
    assert len(job.outputs()) >= 2  # previews streamed before the result
    assert Image.open(png).size == (64, 48) and "style_core" in Image.open(png).text
    captions = [item["caption"] for item in gallery]
    assert captions[0] == "content" and captions[1].startswith("plain stylisation · affine residual")
    assert captions[2].startswith("photorealistic, before smoothing") and "smoothed" in captions[3]
    assert "<b>80 steps in" in info and "40 plain stylisation + 40 photorealistic" in info
    assert "affine residual" in info and "edge SSIM" in info
    with pytest.raises(Exception, match="matting epsilon must be a finite number > 0"):
        client.predict(*args[:-1], 0.0, api_name="/photo")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from tests.synthetic import pan, write_clip
    path = tmp_path_factory.mktemp("clip") / "pan.mp4"
    write_clip(path, pan(48, 64, 6, 2), audio=True)
    return str(path)


def video_args(clip, **kw):
    values = dict(size=64, max_frames=4, start=0.0, iterations=20, frame_iterations=10, style_strength=5,
                  temporal_strength=4.0, temporal="warp", chunk=0, chunk_overlap=0)
    values.update(kw)
    return [handle_file(clip), [handle_file(STYLE)], *values.values()]


def test_video_endpoint_streams_frames_and_returns_the_clip(server, clip):
    from style_core.videoio import probe
    client = Client(server, verbose=False)
    job = client.submit(*video_args(clip), api_name="/video")
    preview, video, info = job.result(timeout=300)
    frames = [out[0] for out in job.outputs() if isinstance(out[0], str)]
    assert len(frames) >= 4  # every finished frame was shown
    path = video["video"] if isinstance(video, dict) else video
    assert (probe(path).frames, probe(path).has_audio) == (4, True)
    assert "4 frames at 12 fps" in info and "E_warp" in info
    assert not list((app.RUNS / "video-jobs").iterdir())  # a finished job's folder is removed
    with pytest.raises(Exception, match="chunk overlap \\(2 frames\\) must be smaller than the chunk \\(2"):
        client.predict(*video_args(clip, chunk=2, chunk_overlap=2), api_name="/video")


def test_browser_plays_the_stylised_mp4(server, page, clip):
    """Headless Chromium: upload a clip and a style in the Video tab, run, and play the result."""
    page.goto(server)
    page.get_by_role("tab", name="Video").click()
    page.locator("#video_input input[type=file]").set_input_files(clip)
    page.locator("#video_styles input[type=file]").set_input_files(STYLE)
    page.wait_for_timeout(1500)
    page.locator("#video_run").click()
    player = page.locator("#video_result video")
    player.wait_for(state="attached", timeout=240_000)
    page.get_by_text("frames at 12 fps").first.wait_for(timeout=240_000)
    playing = player.evaluate("""v => new Promise(done => {
        v.muted = true;
        const check = () => done({width: v.videoWidth, time: v.currentTime, error: v.error && v.error.code});
        v.play().then(() => setTimeout(check, 300)).catch(e => done({error: String(e)}));
    })""")
    page.screenshot(path=str(ARTIFACTS / "studio-video-tab.png"), full_page=True)
    assert playing.get("error") is None, playing
    assert playing["width"] == 64 and playing["time"] > 0
