"""Where the long modes' independent units run: on this host (`Local`, the default) or on a Ray
cluster (`RayCluster`), behind one interface, `backend.run(work, shared, items, devices)`.

A unit is one call `work(shared, item, device)`: a generator function that yields progress (what
the mode shows while it runs) and returns the unit's value. Large mode's units are tiles, video
mode's the chunks after their keyframes, Explore's the cells of a study. `run` yields `Progress`
while a unit works (where it can) and `Finished` with its value and where it ran, as units finish.

- `Local` runs the units here: one after another, or one thread per device where a mode hands
  several devices (each under `jax.default_device`). Nothing of Ray is imported.
- `RayCluster` runs each unit as a Ray task: `shared` (weights, style targets, settings) goes into
  the object store once, the items as they are submitted (a window of them, so memory does not grow
  with the job), and the values come back as they finish (`ray.wait`). A task asks for one GPU when
  the cluster has GPUs, `cpus` CPUs otherwise. A task whose worker dies (killed, node lost) is
  retried by Ray (`retries` times); each unit reports Ray's attempt number, so that the report says
  which ones were retried. Closing the run (Ctrl-C) cancels the outstanding tasks.

The driver keeps the job: it writes every finished unit into the job folder (workers need no shared
filesystem), so a job resumes on either backend.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, Iterator, Sequence

from .errors import StyleError

Work = Callable[[Any, Any, Any], Generator[Any, None, Any]]
RAY_RETRIES = 3           # attempts after the first, for a task whose worker died
CPUS_PER_UNIT = 1         # CPUs a task asks for on a cluster without GPUs
WINDOW_PER_SLOT = 2       # tasks submitted ahead per unit the cluster can run at once
# Seconds to wait for the cluster's address to accept a connection before Ray is asked to join it:
# ray.init on an address where nothing listens retried for about 3 minutes, printing only its own
# warnings (issue 32, 4).
CONNECT_SECONDS = 5.0


@dataclass(frozen=True)
class Progress:
    index: int            # the unit's position in `items`
    value: Any            # what its work yielded


@dataclass(frozen=True)
class Finished:
    index: int
    value: Any            # what its work returned
    where: dict           # backend, node, worker (process id), seconds, retries


def drain(steps: Generator) -> Any:
    """Runs a unit's work to its end, dropping its progress; returns its value."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def summary(places: Iterable[dict]) -> dict:
    """Where a job's units ran, in a few numbers: backend, nodes, worker processes, tasks, retries."""
    places = list(places)
    if not places:
        return {}
    return {"backend": places[0]["backend"], "nodes": len({p["node"] for p in places}),
            "workers": len({(p["node"], p["worker"]) for p in places}), "tasks": len(places),
            "retries": sum(p["retries"] for p in places)}


def said(where: dict) -> str:
    """`summary` in words: "on ray: 1 node, 2 workers, 12 tasks, 1 retry"."""
    if not where:
        return ""
    plural = lambda n, word: f"{n} {word}{'s' * (n != 1)}"  # noqa: E731
    return (f"on {where['backend']}: {plural(where['nodes'], 'node')}, {plural(where['workers'], 'worker')}, "
            f"{plural(where['tasks'], 'task')}, {plural(where['retries'], 'retry').replace('retrys', 'retries')}")


class Local:
    """Today's behaviour: the units on this host, in this process."""
    name = "local"

    def connect(self) -> None:
        """Nothing to connect to (RayCluster's `connect`, which front ends call before any work)."""

    def run(self, work: Work, shared: Any, items: Iterable, devices: Sequence = (None,)
            ) -> Iterator[Progress | Finished]:
        items = list(enumerate(items)) if len(devices) > 1 else enumerate(items)
        if len(devices) == 1:
            for index, item in items:
                yield from _here(work, shared, index, item, devices[0])
            return
        yield from _threads(work, shared, items, devices)


def _here(work: Work, shared, index: int, item, device) -> Iterator[Progress | Finished]:
    start = time.perf_counter()
    steps = work(shared, item, device)
    while True:
        try:
            yield Progress(index, next(steps))
        except StopIteration as stop:
            yield Finished(index, stop.value, {"backend": "local", "node": socket.gethostname(),
                                               "worker": os.getpid(),
                                               "seconds": round(time.perf_counter() - start, 3), "retries": 0})
            return


def _threads(work: Work, shared, items: list, devices: Sequence) -> Iterator[Progress | Finished]:
    """One thread per device (device d takes units d, d + n, ...), each under `jax.default_device`,
    their updates yielded as they come. Closing the iteration stops the threads after their current
    step."""
    import jax
    updates: queue.Queue = queue.Queue(maxsize=64)
    stop = threading.Event()

    def lane(d: int) -> None:
        try:
            with jax.default_device(devices[d]):
                for index, item in items[d::len(devices)]:
                    for update in _here(work, shared, index, item, devices[d]):
                        if stop.is_set():
                            return
                        updates.put(update)
        except BaseException as e:  # handed to the caller's thread
            updates.put(e)
        finally:
            updates.put(None)

    threads = [threading.Thread(target=lane, args=(d,), daemon=True) for d in range(min(len(devices), len(items)))]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            update = updates.get()
            if update is None:
                running -= 1
            elif isinstance(update, BaseException):
                raise update
            else:
                yield update
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock lanes waiting on a full queue
            with contextlib.suppress(queue.Empty):
                updates.get(timeout=0.1)


# --- Ray -----------------------------------------------------------------------------------------------

ADDRESS = re.compile(r"(ray://)?[A-Za-z0-9.\-\[\]:]+:\d+")


def reachable(address: str, seconds: float = CONNECT_SECONDS) -> None:
    """A StyleError unless something accepts a TCP connection at `address` ("HOST:PORT" or
    "ray://HOST:PORT") within `seconds`: a refused or silent address fails here at once, not after
    Ray's minutes of retries. Other forms (RAY_ADDRESS's "auto") are left to Ray."""
    if not ADDRESS.fullmatch(address):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except (OSError, ValueError) as e:
        why = f"nothing answered within {seconds:g} s" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise StyleError(f"could not connect to the Ray cluster at {address}: {why}") from None


def _attempt() -> int:
    """How many times Ray has retried the task this worker runs: Ray's own attempt number, which it
    offers only on its core worker so far (0 where a Ray without it runs)."""
    from ray._private import worker
    try:
        return int(worker.global_worker.core_worker.get_current_task_attempt_number())
    except AttributeError:
        return 0


def _unit(work: Work, shared, item) -> tuple[Any, dict]:
    """One unit on a Ray worker: its work run to the end on the worker's first device."""
    import jax
    import ray

    from .runtime import use_compile_cache
    use_compile_cache()
    start = time.perf_counter()
    value = drain(work(shared, item, jax.devices()[0]))
    context = ray.get_runtime_context()
    return value, {"backend": "ray", "node": context.get_node_id(), "host": ray.util.get_node_ip_address(),
                   "worker": os.getpid(), "seconds": round(time.perf_counter() - start, 3),
                   "retries": _attempt()}


class RayCluster:
    """Units as Ray tasks on the cluster at `address`: None for RAY_ADDRESS's, or a local cluster
    started for this process when that is not set; "HOST:PORT" or "ray://HOST:PORT" for a named one.
    Connects on the first `run` (or `connect`)."""
    name = "ray"

    def __init__(self, address: str | None = None, cpus: int = CPUS_PER_UNIT, retries: int = RAY_RETRIES):
        if address is not None and not ADDRESS.fullmatch(address):
            raise StyleError(f"cluster address {address!r} is not HOST:PORT or ray://HOST:PORT")
        self.address, self.cpus, self.retries = address, cpus, retries

    def connect(self):
        """The `ray` module, connected (once per process); an address where nothing listens is a
        StyleError within CONNECT_SECONDS (before Ray is even imported)."""
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        if address is not None:
            reachable(address)
        try:
            import ray
        except ImportError:
            raise StyleError("the Ray backend needs the `ray` package: pip install ray") from None
        if ray.is_initialized():
            return ray
        # the workers get the library with the job (Ray's py_modules), not from a shared disk
        options = dict(log_to_driver=False, configure_logging=False,
                       runtime_env={"py_modules": [str(Path(__file__).parent)]})
        if address is None:   # a local cluster of this machine, for this process
            options["include_dashboard"] = False
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
            raise StyleError(f"could not connect to the Ray cluster at {address}: {str(e).splitlines()[0]}") from None
        return ray

    def nodes(self) -> list[dict]:
        """The cluster's live nodes, as Ray lists them (address, resources)."""
        return [n for n in self.connect().nodes() if n.get("Alive")]

    def run(self, work: Work, shared: Any, items: Iterable, devices: Sequence = (None,)
            ) -> Iterator[Progress | Finished]:
        ray = self.connect()
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        ask = {"num_gpus": 1} if gpus else {"num_cpus": self.cpus}
        slots = max(1, gpus or int(resources.get("CPU", 1)) // self.cpus)
        task = ray.remote(_unit).options(max_retries=self.retries, retry_exceptions=False, **ask)
        shared_ref = ray.put(shared)
        pending: dict = {}
        items = enumerate(items)
        try:
            while True:
                for index, item in items:
                    pending[task.remote(work, shared_ref, item)] = index
                    if len(pending) >= WINDOW_PER_SLOT * slots:
                        break
                if not pending:
                    return
                done, _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(done[0])
                try:
                    value, where = ray.get(done[0])
                except ray.exceptions.RayTaskError as e:   # the unit's own error, as the unit raised it
                    raise e.cause if isinstance(e.cause, Exception) else e from None
                except ray.exceptions.RayError as e:       # its worker or node lost more often than retried
                    raise StyleError(f"unit {index} failed on the cluster after {self.retries} retries: "
                                     f"{str(e).strip().splitlines()[0]}") from None
                yield Finished(index, value, where)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)


def backend(name: str | None) -> Local | RayCluster:
    """The backend a front end names: "local" (or nothing), "ray" (RAY_ADDRESS's cluster, or a local
    one), "ray://HOST:PORT" or "HOST:PORT"."""
    if name in (None, "", "local"):
        return Local()
    if name == "ray":
        return RayCluster()
    return RayCluster(name)
