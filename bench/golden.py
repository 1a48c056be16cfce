"""Golden runs: every mode through the command line and the studio's endpoints, on the bundled
example at tiny sizes with untrained weights, each result's pixels hashed; a restructuring that
changes no behaviour leaves every hash and loss as it was.

    python bench/golden.py [--root CHECKOUT] [--out FILE]

Run it in two checkouts (before and after) and compare the JSON. Nothing is timed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def pixels(path) -> str:
    return hashlib.sha256(np.asarray(Image.open(path)).tobytes()).hexdigest()[:16]


def cli_runs(root: Path, folder: Path) -> dict:
    content, style = str(root / "assets" / "content.png"), str(root / "assets" / "style.png")
    runs = {"image": ["image", "--size", "64", "--iterations", "12"],
            "image_adam": ["image", "--size", "64", "--iterations", "12", "--optimizer", "adam"],
            "photo": ["photo", "--size", "48", "--iterations", "10"],
            "large": ["large", "--size", "96", "--tile", "64", "--overlap", "16", "--iterations", "5",
                      "--tile-iterations", "5"]}
    found = {}
    for name, (mode, *options) in runs.items():
        out, report = folder / f"{name}.png", folder / f"{name}.json"
        done = subprocess.run([sys.executable, "-m", "style_core", mode, content, style, *options, "--weights", "random",
                               "-o", str(out), "--report", str(report), "--quiet"], cwd=root, capture_output=True, text=True)
        if done.returncode:
            found[f"cli {name}"] = done.stderr.strip().splitlines()[-1:]
            continue
        losses = json.loads(report.read_text()).get("final_losses")
        found[f"cli {name}"] = {"pixels": pixels(out), "losses": losses}
    return found


def studio_runs(root: Path) -> dict:
    from gradio_client import Client, handle_file
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "app.py", "--weights", "random", "--port", str(port)], cwd=root,
                              env=dict(os.environ, STYLE_CORE_COMPILE_CACHE="off"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(180):
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                break
            except Exception:
                time.sleep(1)
        c, s = handle_file(str(root / "assets" / "content.png")), handle_file(str(root / "assets" / "style.png"))
        calls = {"/stylize": dict(size=64, iterations=10, lr=None, coarse_iterations=None),
                 "/photo": dict(size=48, iterations=10),
                 "/large": dict(size=256, tile=128, overlap=16, iterations=5, tile_iterations=5, base_size=64)}
        return {f"studio {api}": pixels(client.predict(content=c, styles=[s], **given, api_name=api)[1])
                for api, given in calls.items()}
    finally:
        server.terminate()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    p.add_argument("--out", type=Path, default=None, help="write the hashes here as JSON")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        found = {**cli_runs(args.root.resolve(), Path(folder)), **studio_runs(args.root.resolve())}
    for name, value in found.items():
        print(f"{name:<18} {value['pixels'] if isinstance(value, dict) else value}")
    if args.out:
        args.out.write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
