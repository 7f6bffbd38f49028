"""What every benchmark record carries, written one way: ``write(path, result)`` adds ``environment`` (the
machine, the threads and the versions of the libraries the script imported) and writes ``path`` as JSON.

Scripts import it as ``from record import write`` (a script's own folder is on ``sys.path``)."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

# the libraries whose version moves a figure, reported when the script imported them
LIBRARIES = ("torch", "lightning", "numpy", "cv2", "onnxruntime", "rapidfuzz", "lmdb", "albumentations")


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what ``platform`` knows (often only ``x86_64``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """The machine and process a figure was measured on; load average at the end (other work skews timings)."""
    env = {"python": platform.python_version(), "cpu": cpu_model(),
           "cpus": os.cpu_count(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
           "command": " ".join(["python", Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}
    if "torch" in sys.modules:
        env["torch_threads"] = sys.modules["torch"].get_num_threads()
    if hasattr(os, "getloadavg"):
        env["load_average_1_5_15min"] = [round(x, 2) for x in os.getloadavg()]
    for name in LIBRARIES:
        if name in sys.modules:
            env[name] = getattr(sys.modules[name], "__version__", "?")
    return env


def write(path: str | Path, result: dict, show: dict | bool = True) -> dict:
    """Write ``result`` + ``environment`` to ``path`` (JSON); print the record (``show=True``), nothing
    (``False``) or the dict given. Returns the record as written."""
    result = {**result, "environment": environment()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    if show is not False:
        print(json.dumps(result if show is True else show, indent=2))
    return result
