"""The README's studio screenshots, from a trained network: the app started with the trained VGG16
(`python app.py --weights FILE`), driven in headless Chromium on a laptop's screen (1366x768) with
real inputs, every tab idle, mid-run and finished, and the Regions panel (painted, and found).

    python docs/screenshots.py [--weights FILE] [--tabs image regions find large photo video explore]

Inputs: the bundled CC0 photo of a cat and public-domain paintings (assets/); for Video, a 2 s pan
across the photo. Each tab runs with the page's own defaults. Writes docs/studio-*.png (256 colours).
"""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONTENT = str(ROOT / "assets" / "photos" / "chelsea.png")
ROCKET = str(ROOT / "assets" / "photos" / "rocket.jpg")
STARRY = str(ROOT / "assets" / "paintings" / "starry_night_google.jpg")
SHIPWRECK = str(ROOT / "assets" / "paintings" / "shipwreck.jpg")
LAPTOP = {"width": 1366, "height": 768}
TABS = {"image": ("Image", ""), "large": ("Large image", "large_"), "photo": ("Photorealistic", "photo_"),
        "video": ("Video", "video_"), "explore": ("Explore", "explore_")}


def save(page, name: str, full: bool = False) -> None:
    raw = page.screenshot(full_page=full)
    path = ROOT / "docs" / f"studio-{name}.png"
    Image.open(io.BytesIO(raw)).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print("wrote", path.relative_to(ROOT), flush=True)


def pan_clip(folder: Path) -> str:
    from style_core.images import load_image, resize_longest
    from tests.synthetic import write_clip
    photo = resize_longest(load_image(CONTENT), 300)
    frames = [photo[:180, k:k + 240] for k in range(24)]
    path = folder / "pan.mp4"
    write_clip(path, frames, fps=12)
    return str(path)


def start_server(weights: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--weights", weights, "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server, f"http://127.0.0.1:{port}/"


def run_tab(page, tab: str, inputs: dict, limit: float) -> None:
    title, prefix = TABS[tab]
    page.get_by_role("tab", name=title, exact=True).click()
    page.wait_for_timeout(500)
    save(page, f"{tab}-idle")
    for box, files in inputs.items():
        page.locator(f"#{box} input[type=file]").set_input_files(files)
    page.wait_for_timeout(1500)
    page.locator(f"#{prefix}run").click()
    started = time.time()
    page.get_by_text(" left").first.wait_for(timeout=600_000)   # a measured rate: mid-run
    page.wait_for_timeout(3000)
    save(page, f"{tab}-running")
    done = page.locator(f"#{prefix}status [data-state=done]")
    try:
        done.wait_for(timeout=max(limit - (time.time() - started), 1) * 1000)
    except Exception:
        page.locator(f"#{prefix}stop").click()
        page.locator(f"#{prefix}status [data-state=stopped]").wait_for(timeout=120_000)
    page.wait_for_timeout(1000)
    save(page, f"{tab}-done")
    print(f"{tab}: {time.time() - started:.0f} s", flush=True)


def regions(page) -> None:
    """The Image tab's Regions panel: the left half painted for The Shipwreck, the right for The
    Starry Night, then a run."""
    page.get_by_role("tab", name="Image", exact=True).click()
    page.locator("#content input[type=file]").set_input_files(CONTENT)
    page.locator("#styles input[type=file]").set_input_files([SHIPWRECK, STARRY])
    page.wait_for_timeout(1500)
    page.locator("#regions").get_by_text("Regions (optional)").click()
    page.locator("#regions_line").get_by_text("Nothing painted").wait_for(timeout=60_000)
    from tests.test_app import paint_halves
    paint_halves(page, shape=(341, 512))
    page.locator("#regions_line").get_by_text("2 regions").wait_for(timeout=60_000)
    page.wait_for_timeout(2000)
    page.locator("#regions").scroll_into_view_if_needed()
    save(page, "regions")
    page.locator("#run").click()
    page.locator("#status [data-state=done]").wait_for(timeout=900_000)
    page.wait_for_timeout(1000)
    save(page, "regions-result")


def find(page) -> None:
    """The Image tab's Regions panel after Find regions: a launch at dusk under The Shipwreck, K
    chosen; the found regions on both images and the label images they made."""
    page.get_by_role("tab", name="Image", exact=True).click()
    page.locator("#content input[type=file]").set_input_files(ROCKET)
    page.locator("#styles input[type=file]").set_input_files([SHIPWRECK])
    page.wait_for_timeout(1500)
    page.locator("#regions").get_by_text("Regions (optional)").click()
    page.locator("#find_regions").click()
    page.locator("#found_line").get_by_text("Found").wait_for(timeout=120_000)
    page.wait_for_timeout(2000)
    page.locator("#find_regions").scroll_into_view_if_needed()
    page.mouse.wheel(0, 120)
    page.wait_for_timeout(500)
    save(page, "find-regions")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="default: the trained VGG16 of requirements-dev.txt")
    p.add_argument("--tabs", nargs="+", default=["image", "regions", "find", "large", "photo", "video", "explore"])
    p.add_argument("--limit", type=float, default=600, help="seconds a tab may run before Stop")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright
    from tests.keras_models import trained_vgg16_onnx
    weights = args.weights or str(trained_vgg16_onnx())
    server, url = start_server(weights)
    try:
        with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            clip = pan_clip(Path(tmp))
            inputs = {"image": {"content": CONTENT, "styles": STARRY},
                      "large": {"large_content": CONTENT, "large_styles": STARRY},
                      "photo": {"photo_content": CONTENT, "photo_styles": STARRY},
                      "video": {"video_input": clip, "video_styles": STARRY},
                      "explore": {"explore_content": CONTENT, "explore_style": STARRY}}
            for tab in args.tabs:
                page = browser.new_page(viewport=LAPTOP)
                deadline = time.time() + 180
                while True:
                    try:
                        page.goto(url)
                        page.locator("#run").wait_for(timeout=10_000)
                        break
                    except Exception:
                        if time.time() > deadline:
                            raise
                        time.sleep(3)
                if tab == "regions":
                    regions(page)
                elif tab == "find":
                    find(page)
                else:
                    run_tab(page, tab, inputs[tab], args.limit)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
