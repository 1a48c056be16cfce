"""This process's memory as Linux reports it (/proc/self/status), for the benchmarks."""

from __future__ import annotations

from pathlib import Path


def vm_kib(field: str) -> int:
    """A /proc/self/status field in KiB: VmRSS (resident now), VmHWM (peak since start or reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Makes VmHWM the current resident size (Linux clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")
