"""Renderer realism ablation: which renderer levers make a rendered-only model read real text.

    python bench/renderer_ablation.py [--jobs 2] [--only default,no_photo] [--epochs 6 --samples 16000 --batch 32]
    python bench/renderer_ablation.py --table      # README's table, from the records

Each variant trains `experiment=synthetic_only` (rendered words only, validation on renders) at a small fixed
budget (default: 6 × 16,000 images at batch 32, one thread per run; batch 32 leaves the CTC blank plateau after
half the images of batch 64, bench/results/quickstart_batch_size.json), with one renderer change, then reads:

* **real_train** (`../shared/data/real_train`: IIIT5K/SVT/IC15 *training* crops, 6,725 images), which a
  rendered-only model never sees: this is the figure a lever is kept or dropped by;
* the **benchmarks** (IIIT5K, SVT, IC15, SVTP, SVT-50), reported only, never used to choose anything.

Results are appended to bench/results/renderer_ablation.json (one record per variant; variants already there
are skipped, so an interrupted sweep continues). Runs go to outputs/renderer_ablation/<variant>/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "renderer_ablation.json"
S = "renderer.style."
# name -> overrides on top of `experiment=synthetic_only` (whose renderer is conf/renderer/default.yaml)
VARIANTS: dict[str, list[str]] = {
    "v1": ["renderer=v1"],  # the renderer before issue #11 (same training recipe)
    "v1_no_augment": ["renderer=v1", "augment=none"],  # today's `make train` before issue #11
    "default": [],
    "default_seed1": ["seed=1"],  # the default again, other renders and initial weights: run-to-run noise
    "no_augment": ["augment=none"],
    "no_photo": [f"{S}p_photo=0"],
    "no_tight_crops": [f"{S}p_tight_y=0", f"{S}margin_x=[0.03,0.3]", f"{S}margin_y=[0.02,0.2]"],
    "no_neighbours": [f"{S}p_neighbours=0"],
    "no_bold": [f"{S}p_bold=0"],
    "no_edge": [f"{S}p_edge=0"],
    "no_lowres_jpeg": [f"{S}p_lowres=0", f"{S}p_jpeg=0"],
    "v1_case": [f"{S}p_upper=0.1", f"{S}p_capitalized=0.2"],
    "v1_contrast": [f"{S}min_contrast=0.35", f"{S}bg_amplitude=0.12"],
    "v1_geometry": [f"{S}max_rotation=2", f"{S}p_perspective=0.3", f"{S}p_blur=0.25"],
    "no_90k_words": ["renderer.extra_words_files=[]"],
    "frequent_words": [f"{S}p_frequent=0.5"],
    "symbols": [f"{S}p_symbols=0.1"],  # prices, times, dates, punctuated words (an addition, off by default)
    # additions suggested by synthetic_only.pt's errors on real_train (HOTEL read "hootel", EXECUTIVE "bxecutivb"):
    "wide_spacing": [f"{S}char_spacing=[-0.02,0.5]"],  # letter spacing up to half the font size
    "cut_edges": [f"{S}margin_x=[-0.06,0.12]"],  # the first/last glyph sometimes cut by the crop
    # camera, light and arcs (RenderStyle levers added after the first ablation rounds, off by default)
    "curve": [f"{S}p_curve=0.15"],
    "shading": [f"{S}p_shading=0.3"],
    "motion_blur": [f"{S}p_motion_blur=0.25"],
    # colour pairs measured on real_train's training side (data/colors): real crops have lighter text more often
    # (56 %) and lower contrast than the renderer draws
    "real_colors": [f"{S}p_real_colors=0.5"],
    "low_contrast": [f"{S}min_contrast=0.15"],
    # the additions above together (each alone was within the noise at this budget: do small gains add up?)
    "new_levers": [f"{S}p_real_colors=0.5", f"{S}p_shading=0.3", f"{S}p_motion_blur=0.25", f"{S}p_curve=0.15"],
    # display, script and handwriting faces (data/fonts/README.md) drawn at 0.3 of the others' rate
    "fewer_display_fonts": [f"++{S}font_weights={{" + ",".join(f"{d}/*:0.3" for d in (
        "aenigma", "beteckna", "blankenburg", "breip", "dustin", "femkeklaver", "humor-sans", "isabella", "kristi",
        "lobster", "rufscript", "staypuft")) + "}"],
}
# the largest gain measured (+0.9) repeated with other renders and initial weights: it read −0.3, so noise
VARIANTS["fewer_display_fonts_seed1"] = [*VARIANTS["fewer_display_fonts"], "seed=1"]


def run(cmd: list[str], log: Path, threads: int = 1) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), WANDB_MODE="disabled")
    with log.open("w") as f:
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)


def evaluate(ckpt: Path, root: str, out: Path, extra: list[str]) -> dict:
    run([sys.executable, "-m", "crnn_lit.evaluate", f"ckpt={ckpt}", f"benchmark_root={root}", "threads=1",
         "decoder=greedy", f"hydra.run.dir={out}", *extra], out.parent / f"{out.name}.log")  # the recorded headline
    result = json.loads((out / "results.json").read_text())
    return {f"{c['benchmark']}" + ("" if c["lexicon"] == "none" else f"-{c['lexicon']}"): round(100 * c["accuracy"], 2)
            for c in result["columns"]} | {"combined": round(100 * result["combined_accuracy_lexicon_free"], 2)}


def variant(name: str, args) -> dict:
    run_dir = ROOT / "outputs" / "renderer_ablation" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    overrides = ["experiment=synthetic_only", f"trainer.max_epochs={args.epochs}", f"data.batch_size={args.batch}",
                 f"data.samples_per_epoch={args.samples}", f"hydra.run.dir={run_dir}", *VARIANTS[name]]
    start = time.time()
    run([sys.executable, "-m", "crnn_lit.train", *overrides], run_dir.parent / f"{name}.train.log", args.threads)
    ckpt = next((run_dir / "checkpoints").glob("epoch*.ckpt"))
    curve = (run_dir / "learning_curve.csv").read_text().splitlines()
    last = dict(zip(curve[0].split(","), curve[-1].split(","), strict=True))
    no_lexicons = [f"benchmarks.{b}.lexicons=null" for b in ("iiit5k", "svt", "ic15")]
    real = evaluate(ckpt, args.real_root, run_dir / "eval_real_train", ["only=[iiit5k,svt,ic15]", *no_lexicons])
    bench = evaluate(ckpt, args.benchmark_root, run_dir / "eval_benchmarks", [])
    return {"variant": name, "overrides": VARIANTS[name], "images": int(last["images"]),
            "cpu_hours": float(last["cpu_hours"]), "wall_minutes": round((time.time() - start) / 60, 1),
            "synthetic_val_acc": round(100 * float(last["val/acc"]), 2), "real_train": real, "benchmarks": bench,
            "checkpoint": ckpt.name}


def table(records: list[dict]) -> str:
    """README's ablation table: one row per measured variant, in VARIANTS order, change against `default`."""
    by_name = {r["variant"]: r for r in records}
    base = by_name["default"]["real_train"]["combined"] if "default" in by_name else None
    header = ("| variant | overrides | CPU-h | real_train IIIT5K / SVT / IC15 | real_train combined | IIIT5K | SVT "
              "| IC15 | SVTP | SVT-50 |")
    rows = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for name in (n for n in VARIANTS if n in by_name):
        r = by_name[name]
        real, bench = r["real_train"], r["benchmarks"]
        delta = None if base is None or name == "default" else real["combined"] - base
        change = "" if delta is None else " (±0.0)" if abs(delta) < 0.05 else f" ({delta:+.1f})".replace("-", "−")
        threads = re.search(r"(\d+) thread", r.get("budget", ""))
        cpu = f"{r['cpu_hours']:.2f}" + (f" ({threads[1]} threads)" if threads and threads[1] != "1" else "")
        rows.append(f"| `{name}` | {', '.join(f'`{o}`' for o in r['overrides']) or '–'} | {cpu} "
                    f"| {real['IIIT5K']:.1f} / {real['SVT']:.1f} / {real['IC15']:.1f} | {real['combined']:.1f}{change} "
                    + "".join(f"| {bench[k]:.1f} " for k in ("IIIT5K", "SVT", "IC15", "SVTP", "SVT-50")) + "|")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variant names")
    ap.add_argument("--table", action="store_true", help="print README's table from the records and exit")
    ap.add_argument("--jobs", type=int, default=2, help="variants trained at once (--threads each)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--samples", type=int, default=16000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training run (CPU-hours count them all)")
    ap.add_argument("--real-root", default=str(ROOT.parent / "shared" / "data" / "real_train"))
    ap.add_argument("--benchmark-root", default=str(ROOT.parent / "shared" / "data" / "benchmarks"))
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(OUT.read_text())))
        return
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    done = json.loads(OUT.read_text()) if OUT.is_file() else []
    todo = [n for n in names if n not in {r["variant"] for r in done}]

    lock = threading.Lock()

    def one(name: str) -> None:
        record = variant(name, args) | {"budget": f"{args.epochs} x {args.samples} images, batch {args.batch}, {args.threads} thread(s)"}
        with lock:
            current = json.loads(OUT.read_text()) if OUT.is_file() else []
            OUT.write_text(json.dumps([*current, record], indent=1) + "\n")
        print(json.dumps(record), flush=True)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one, todo))


if __name__ == "__main__":
    main()
