"""The studio's disk use under load: 3 concurrent users make 50 small Image runs in all; after every run
the app's temporary folder (Gradio's uploads and served copies, and our runs folder) is measured.

    python bench/bench_disk.py [--runs 50] [--users 3] [--age 20]

With `--age` seconds as the bound (the app's default is an hour: RUN_MAX_AGE), the folder must stop
growing once runs are older than the bound: the printed peak and final figures show it. Untrained
weights (no network needed); 48 px, 2 iterations per run.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def folder_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--age", type=int, default=20, help="the age bound, seconds (app default 3600)")
    args = parser.parse_args()

    import app
    from gradio_client import Client, handle_file
    from style_core.weights import load_weights
    app.RUN_MAX_AGE = args.age
    app._weights["vgg19"] = load_weights("vgg19", "random")
    demo = app.build()
    demo.delete_cache = (max(1, args.age // 4), args.age)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    content, style = str(ROOT / "assets" / "content.png"), str(ROOT / "assets" / "style.png")
    samples, lock, counter = [], threading.Lock(), {"done": 0}
    start = time.time()

    def user() -> None:
        client = Client(url, verbose=False)
        while True:
            with lock:
                if counter["done"] >= args.runs:
                    return
                counter["done"] += 1
            client.predict(handle_file(content), [handle_file(style)], 48, 2, 5, "none", "", "vgg19", "paper",
                           "", "adam", None, "mse", "paper", "content", 1.0, 0.0, 1, 0, "box", api_name="/stylize")
            with lock:
                files, size = folder_size(app.TEMP)
                samples.append({"run": len(samples) + 1, "seconds": round(time.time() - start, 1),
                                "files": files, "bytes": size})

    threads = [threading.Thread(target=user) for _ in range(args.users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(args.age + args.age // 4 + 2)  # one more sweep after the last run has aged
    app.prune_runs()
    files, size = folder_size(app.TEMP)
    left = sorted(str(p.relative_to(app.TEMP)) for p in app.TEMP.rglob("*") if p.is_file())
    demo.close()
    peak = max(samples, key=lambda s: s["bytes"])
    report = {"runs": len(samples), "users": args.users, "age_bound_s": args.age,
              "run_seconds": samples[-1]["seconds"], "peak": peak,
              "after_10": samples[min(9, len(samples) - 1)], "after_25": samples[min(24, len(samples) - 1)],
              "after_all": samples[-1], "after_the_bound": {"files": files, "bytes": size, "some": left[:8]}}
    print(json.dumps(report, indent=1))
    out = ROOT / "bench" / "results" / "disk-cpu.json"
    out.write_text(json.dumps({"report": report, "samples": samples}, indent=1))


if __name__ == "__main__":
    main()
