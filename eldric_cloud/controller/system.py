"""CPU and memory for the heartbeat, from Linux's /proc (no dependency); None elsewhere.

The parsers take text, so they are tested without a /proc; ``SystemSampler`` reads the
files and turns two successive readings into percentages. Reading /proc costs microseconds
but is still file IO, so the client calls ``sample`` off the event loop.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from eldric_cloud.controller.protocol import SystemFigures

PROC = Path("/proc")


def cpu_times(stat_text: str) -> tuple[int, int] | None:
    """(busy, total) jiffies from /proc/stat's aggregate ``cpu`` line."""
    for line in stat_text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            total = sum(values[:8])  # guest time is already counted in user
            return total - idle, total
    return None


def memory_percent(meminfo_text: str) -> float | None:
    fields = {}
    for line in meminfo_text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name] = int(parts[0])
    total, available = fields.get("MemTotal"), fields.get("MemAvailable")
    if not total or available is None:
        return None
    return round(100.0 * (total - available) / total, 1)


def rss_bytes(statm_text: str) -> int | None:
    parts = statm_text.split()
    return int(parts[1]) * os.sysconf("SC_PAGE_SIZE") if len(parts) > 1 else None


class SystemSampler:
    def __init__(self, proc: Path = PROC) -> None:
        self.proc = proc
        self._cpu: tuple[int, int] | None = None
        self._process: tuple[float, float] | None = None  # (process CPU seconds, wall seconds)

    def sample(self) -> SystemFigures:
        cpu = self._read(self.proc / "stat", cpu_times)
        cpu_percent = None
        if cpu is not None and self._cpu is not None and cpu[1] > self._cpu[1]:
            cpu_percent = round(100.0 * (cpu[0] - self._cpu[0]) / (cpu[1] - self._cpu[1]), 1)
        self._cpu = cpu or self._cpu
        process = (time.process_time(), time.monotonic())
        process_percent = None
        if self._process is not None and process[1] > self._process[1]:
            process_percent = round(100.0 * (process[0] - self._process[0]) / (process[1] - self._process[1]), 1)
        self._process = process
        return SystemFigures(
            cpu_percent=cpu_percent,
            memory_percent=self._read(self.proc / "meminfo", memory_percent),
            process_cpu_percent=process_percent,
            process_rss_bytes=self._read(self.proc / "self" / "statm", rss_bytes),
        )

    @staticmethod
    def _read(path: Path, parse):
        try:
            return parse(path.read_text())
        except (OSError, ValueError, IndexError):
            return None
