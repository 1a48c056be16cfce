"""Large mode's tiles on the local backend against a local Ray cluster: tiles per minute, and the
cost of a task.

    python bench/bench_cluster.py [--size 2048] [--tile 256] [--overlap 64] [--tile-iterations 2]
                                  [--workers 1 2] [--out bench/results/cluster-cpu.json]

One job (the bundled content, square, at --size; no global pass, so the tiles are the whole job):
first here on the local backend, then for each --workers N on a fresh one-node Ray cluster with N
CPUs (`ray start --head --num-cpus N`), which runs, with this script's driver, in a network namespace
of its own that has only loopback (`unshare -n`; root needed), as the tests do. Each configuration's
driver is a fresh process, so every one pays its own compilations (a Ray worker compiles once per
process). Figures per configuration: wall seconds of the tiles stage (from the first tile handed to
the backend to the last one back), tiles per minute, the mean
time a tile spent in its task (`report()["units"]`), and the overhead per tile:
(workers x wall - sum of task times) / tiles, i.e. what a tile costs beyond its own optimisation
(shipping its inputs and result, the driver's canvas and job-folder writes, idle workers).
Untrained weights (`random`): time does not depend on their values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_image import write_result  # noqa: E402


class Timed:
    """A backend that notes when its units started to be handed out and when the last one came back."""

    def __init__(self, inner):
        self.inner, self.name, self.start, self.end = inner, inner.name, None, None

    def run(self, *args, **kw):
        self.start = time.perf_counter()
        yield from self.inner.run(*args, **kw)
        self.end = time.perf_counter()


def driver(size: int, tile: int, overlap: int, tile_iterations: int, where: str) -> dict:
    """One job in this process on the backend `where`; its figures."""
    from style_core.cluster import backend
    from style_core.images import load_image
    from style_core.large import LargeSettings, stylize_large
    from style_core.settings import ImageSettings
    from style_core.weights import load_weights

    content, style = load_image(ROOT / "assets" / "content.png"), load_image(ROOT / "assets" / "style.png")
    side = min(content.shape[:2])
    top, left = (content.shape[0] - side) // 2, (content.shape[1] - side) // 2
    settings = LargeSettings(ImageSettings(), size=size, tile=tile, overlap=overlap, base_size=0,
                             tile_iterations=tile_iterations)
    timed, start = Timed(backend(where)), time.perf_counter()
    for event in stylize_large(content[top:top + side, left:left + side], [style], settings,
                               load_weights("vgg19", "random"), backend=timed):
        pass
    end, result = time.perf_counter(), event.result
    tiles_from, units = timed.start, result.units
    busy = sum(u["seconds"] for u in units)
    return {"backend": where, "tiles": len(result.layout), "tile_iterations": tile_iterations,
            "seconds_total": round(end - start, 2), "seconds_tiles": round(timed.end - tiles_from, 2),
            "tiles_per_minute": round(len(units) / (timed.end - tiles_from) * 60, 2),
            "mean_task_seconds": round(busy / len(units), 3),
            "workers_seen": len({(u["node"], u["worker"]) for u in units}),
            "hosts": sorted({u.get("host", "here") for u in units}), "sum_task_seconds": round(busy, 2)}


def on_ray(workers: int, args) -> dict:
    """The job on a fresh one-node Ray cluster of `workers` CPUs, in a loopback-only namespace."""
    holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 3600"])
    time.sleep(0.5)
    enter = ["nsenter", f"--net=/proc/{holder.pid}/ns/net"]
    temp = tempfile.mkdtemp(prefix="ray")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0", "STYLE_CORE_COMPILE_CACHE": "off"}
    ray = str(Path(sys.executable).with_name("ray"))
    try:
        subprocess.run([*enter, ray, "start", "--head", "--num-cpus", str(workers), "--port", "6379",
                        "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp],
                       env=env, check=True, capture_output=True)
        done = subprocess.run([*enter, sys.executable, __file__, "--driver", "127.0.0.1:6379", *_job_args(args)],
                              env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.splitlines()[-1])
    finally:
        subprocess.run([*enter, ray, "stop", "--force"], env=env, capture_output=True)
        holder.kill()
        shutil.rmtree(temp, ignore_errors=True)


def _job_args(args) -> list[str]:
    return ["--size", str(args.size), "--tile", str(args.tile), "--overlap", str(args.overlap),
            "--tile-iterations", str(args.tile_iterations)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--tile-iterations", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--driver", default=None, help=argparse.SUPPRESS)  # one job, its figures on stdout
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cluster-cpu.json"))
    args = parser.parse_args()
    if args.driver:
        print(json.dumps(driver(args.size, args.tile, args.overlap, args.tile_iterations, args.driver)))
        return
    env = {**os.environ, "STYLE_CORE_COMPILE_CACHE": "off"}
    local = subprocess.run([sys.executable, __file__, "--driver", "local", *_job_args(args)], env=env,
                           capture_output=True, text=True, check=True)
    rows = [{"workers": 1, **json.loads(local.stdout.splitlines()[-1])}]
    rows += [{"workers": n, **on_ray(n, args)} for n in args.workers]
    print(f"{'backend':>16} {'workers':>7} {'tiles':>5} {'tiles s':>8} {'tiles/min':>9} {'task s':>7} "
          f"{'overhead s':>10}")
    for row in rows:
        row["overhead_per_tile"] = round((row["workers"] * row["seconds_tiles"] - row["sum_task_seconds"])
                                         / row["tiles"], 3)
        name = "local" if row["backend"] == "local" else "ray (loopback)"
        print(f"{name:>16} {row['workers']:>7} {row['tiles']:>5} {row['seconds_tiles']:>8} "
              f"{row['tiles_per_minute']:>9} {row['mean_task_seconds']:>7} {row['overhead_per_tile']:>10}")
    write_result({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                  "command": "python bench/bench_cluster.py " + " ".join(sys.argv[1:]), "rows": rows}, args.out)


if __name__ == "__main__":
    main()
