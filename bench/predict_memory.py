"""Peak memory of ``python -m crnn_lit.predict`` against the number of images it reads.

    python bench/predict_memory.py                                   # this checkout, 1× and 20× real_train
    python bench/predict_memory.py --src /path/to/other/checkout/src --label before --copies 1

Each figure is one ``predict inputs=<folder> output=<file>.csv decoder=greedy`` process (the shipped default model,
one thread; greedy as when issue 28 measured it: a decoder adds a constant, the images are what grows), its peak
resident set size read with ``os.wait4`` (the kernel's ``ru_maxrss`` of that child alone).
``--copies k`` reads a folder of k copies of ``../shared/data/real_train`` (6,725 crops; the copies are
symbolic links, so the images are the same files under k different paths). ``--src`` names the code to measure
(another checkout's ``src``, or an exported tree with ``--commit`` naming it: the "before" figures). Results are
merged into bench/results/predict_memory.json under ``--label``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import write

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def copies_folder(source: Path, copies: int, into: Path) -> int:
    """``into/copy<k>/…``: every image file of ``source`` linked ``copies`` times; returns the image count."""
    files = sorted(p for p in source.rglob("*.png") if p.is_file())
    for k in range(copies):
        for path in files:
            link = into / f"copy{k:02d}" / path.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
    return copies * len(files)


def measure(src: Path, inputs: Path, run_dir: Path, extra: list[str]) -> dict:
    """One predict process: peak RSS (MB), wall time, rows written."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "WANDB_MODE": "disabled"}
    output = run_dir / "predictions.csv"
    command = [sys.executable, "-m", "crnn_lit.predict", f"inputs={inputs}", f"output={output}", "decoder=greedy",
               f"hydra.run.dir={run_dir}", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=src.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN would pool every child)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"predict failed:\n{stderr[-2000:]}")
    rows = len(output.read_text(encoding="utf-8").splitlines()) - 1
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "seconds": round(seconds, 1), "rows": rows}


def git_commit(src: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=str(ROOT / "src"), help="the crnn_lit code to measure")
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/real_train"))
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--label", default="after")
    parser.add_argument("--extra", nargs="*", default=[], help="more predict overrides, e.g. chunk_size=256")
    parser.add_argument("--commit", default=None, help="the commit --src holds (default: asked of git there)")
    parser.add_argument("--out", default=str(BENCH / "results/predict_memory.json"))
    args = parser.parse_args()
    src = Path(args.src).resolve()
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    result.pop("environment", None)  # write() adds this run's
    runs = result.setdefault(args.label, {})
    runs.update({"src_commit": args.commit or git_commit(src), "overrides": args.extra})
    for copies in args.copies:
        with tempfile.TemporaryDirectory() as tmp:
            inputs = Path(tmp) / "inputs"
            images = copies_folder(Path(args.data), copies, inputs) if copies > 1 else None
            figures = measure(src, inputs if images else Path(args.data), Path(tmp) / "run", args.extra)
        figures["images"] = images or figures["rows"]
        runs[f"{copies}x"] = figures
        print(args.label, f"{copies}x", figures, flush=True)
    result["what"] = ("peak RSS of one `python -m crnn_lit.predict inputs=<folder> output=<csv> decoder=greedy` "
                      "process (shipped default model, OMP_NUM_THREADS=1), k× ../shared/data/real_train (6,725 crops)")
    result.pop("machine", None)
    write(out, result, show=False)


if __name__ == "__main__":
    main()
