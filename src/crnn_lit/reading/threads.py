"""How many threads a reading uses: as many as the cores other processes leave free, and never more than torch's.

Why: PyTorch's CPU kernels run a team of OpenMP threads, one per core, that meet at a barrier after every
operation; a core shared with another busy process delays its thread by a scheduler slice at each barrier, and the
whole team waits. On two cores beside one busy process, reading with torch's default of two threads was 4.4×
slower in wall time than with one (IIIT5K's 3,000 crops, issue 34; bench/results/reading_threads.json). So the
default (``threads=None``) measures, batch by batch, how many of this process's cores the *other* processes keep
busy (the kernel's per-CPU counters in ``/proc/stat`` minus this process's own CPU time over the same interval)
and reads with the rest, at least one and at most torch's thread count (``torch.get_num_threads()``: its
default, ``OMP_NUM_THREADS``, or what the caller set). The count is set around each forward pass and the
caller's restored after it. Where ``/proc/stat`` does not exist (macOS, Windows) the 1-minute load average stands
in for it. A fixed ``threads=N`` is used as given.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

PROC_STAT = Path("/proc/stat")
# /proc/stat columns: user nice system idle iowait irq softirq steal (guest time is already in user)
IDLE_COLUMNS = (3, 4)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or a SLURM allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class OtherLoad:
    """Cores kept busy by other processes since the previous call (``cores``): busy CPU time of this process's
    cores (``/proc/stat``) minus this process's own, over the wall time between the two calls."""

    def __init__(self, stat: Path = PROC_STAT):
        self.stat = stat
        self.cpus = {f"cpu{i}" for i in os.sched_getaffinity(0)} if hasattr(os, "sched_getaffinity") else set()
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._sample()

    def _busy_s(self) -> float | None:
        try:
            lines = self.stat.read_text().splitlines()
        except OSError:
            return None
        ticks = 0
        for line in lines:
            name, *values = line.split()
            if name in self.cpus:
                ticks += sum(int(v) for i, v in enumerate(values[:8]) if i not in IDLE_COLUMNS)
        return ticks / self.tick

    def _sample(self) -> tuple[float, float | None, float]:
        own = os.times()
        return time.monotonic(), self._busy_s(), own.user + own.system

    def elapsed(self) -> float:
        return time.monotonic() - self._last[0]

    def cores(self) -> float:
        """Cores the other processes kept busy since the last call (the load average without ``/proc/stat``)."""
        now = self._sample()
        (t0, busy0, own0), (t1, busy1, own1) = self._last, now
        self._last = now
        if busy0 is None or busy1 is None or t1 <= t0:
            return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        return max(0.0, (busy1 - busy0 - (own1 - own0)) / (t1 - t0))


def free_cores(others: float) -> int:
    """Cores left to read with when other processes keep ``others`` cores busy (at least one). A core counts as
    free unless others keep it busy more than a quarter of the time: a thread that shares a core stalls every
    barrier of its team, so a half-free core costs more than it gives."""
    return max(1, math.floor(available_cores() - others + 0.25))


def probe_free_cores(seconds: float = 0.2) -> int:
    """``free_cores`` measured over the next ``seconds`` (for a thread count fixed once, as an ONNX Runtime
    session's is)."""
    load = OtherLoad()
    time.sleep(seconds)
    return free_cores(load.cores())


class ThreadPolicy:
    """The intra-op thread count of each forward pass: ``threads`` when given, else the cores other processes leave
    free (``OtherLoad``, re-measured every ``window`` seconds of reading), within [1, torch's count]. Until
    the first window is measured, one thread: a few images read no slower, and a busy machine is never made
    busier."""

    def __init__(self, threads: int | None = None, window: float = 0.25):  # threads >= 1: Recognizer.KNOBS
        self.fixed, self.window = threads, window
        self._load: OtherLoad | None = None
        self.current = threads or 1
        self.chosen: list[int] = []  # each decision, for the benchmark's record

    def threads(self, limit: int) -> int:
        """The count for the next forward pass; ``limit``: torch's own (the caller's) thread count."""
        if self.fixed is not None:
            return self.fixed
        if self._load is None:
            self._load = OtherLoad()
        elif self._load.elapsed() >= self.window:
            self.current = free_cores(self._load.cores())
            self.chosen.append(self.current)
        return min(self.current, limit)

    @contextmanager
    def applied(self) -> Iterator[int]:
        """torch's thread count set for one forward pass, and the caller's restored after it."""
        before = torch.get_num_threads()
        threads = self.threads(before)
        if threads != before:
            torch.set_num_threads(threads)
        try:
            yield threads
        finally:
            if threads != before:
                torch.set_num_threads(before)
