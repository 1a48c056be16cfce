"""Every tab of the studio with the page's own defaults, timed as a user meets them: the app started
with the trained VGG16 (`python app.py --weights FILE`), each tab's endpoint called through
gradio_client with only its inputs (every other parameter is the page's default), one after another.

    python bench/bench_tabs.py [--weights FILE] [--tabs image large photo video explore] [--out JSON]

Inputs: a real photo and painting from assets/ (chelsea under The Starry Night); for video, a 4 s
pan across the photo written with PyAV. Compilation counts (a fresh server: the first run of a tab
is what a new user waits for). Writes --out (JSON) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from style_core.images import load_image, resize_longest  # noqa: E402

CONTENT = ROOT / "assets" / "photos" / "chelsea.png"
STYLE = ROOT / "assets" / "paintings" / "starry_night_google.jpg"


def trained_file() -> str:
    from tests.keras_models import trained_vgg16_onnx
    return str(trained_vgg16_onnx())


def clip(path: Path, seconds: float = 4, fps: int = 12) -> str:
    """A camera panning 1 px per frame across the photo."""
    from tests.synthetic import write_clip
    photo = resize_longest(load_image(CONTENT), 400)
    h, w = 240, 320
    frames = [photo[:h, k:k + w] for k in range(int(seconds * fps))]
    write_clip(path, frames, fps=fps)
    return str(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="default: the trained VGG16 of requirements-dev.txt")
    p.add_argument("--tabs", nargs="+", default=["image", "large", "photo", "video", "explore"])
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "tabs-cpu.json"))
    args = p.parse_args()
    from gradio_client import Client, handle_file
    weights = args.weights or trained_file()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--weights", weights, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    rows = []
    try:
        deadline = time.time() + 180
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(2)
        with tempfile.TemporaryDirectory() as tmp:
            inputs = {"image": dict(content=handle_file(str(CONTENT)), styles=[handle_file(str(STYLE))]),
                      "large": dict(content=handle_file(str(CONTENT)), styles=[handle_file(str(STYLE))]),
                      "photo": dict(content=handle_file(str(CONTENT)), styles=[handle_file(str(STYLE))]),
                      "video": dict(clip=handle_file(clip(Path(tmp) / "pan.mp4")),
                                    styles=[handle_file(str(STYLE))]),
                      "explore": dict(study="content_weight", content=handle_file(str(CONTENT)),
                                      style=handle_file(str(STYLE)))}
            endpoints = {"image": "/stylize", "large": "/large", "photo": "/photo", "video": "/video",
                         "explore": "/explore"}
            api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
            for tab in args.tabs:
                # the page's default for every other parameter; one whose default is empty (None) is sent so
                values = {p["parameter_name"]: None for p in api[endpoints[tab]]["parameters"]
                          if not p["parameter_has_default"]}
                start = time.perf_counter()
                out = client.predict(**{**values, **inputs[tab]}, api_name=endpoints[tab])
                seconds = time.perf_counter() - start
                line = str(out[-1])
                rows.append({"tab": tab, "seconds": round(seconds, 1), "status": line[:400]})
                print(f"{tab:8s} {seconds:8.1f} s", flush=True)
    finally:
        server.terminate()
        server.wait(30)
    result = {"command": "bench/bench_tabs.py " + " ".join(sys.argv[1:]), "platform": platform.platform(),
              "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "weights": weights, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
