"""Write the results tables of README.md and docs/*.md from bench/results/, so each figure has one copy.

    python docs/gen_tables.py           # rewrite every generated table in place (`make docs` runs this)
    python docs/gen_tables.py --check   # exit 1, naming the files, when a table differs from its records

A generated table sits between ``<!-- gen:NAME -->`` and ``<!-- /gen:NAME -->``; NAME is a key of ``TABLES``.
Evaluation tables come from the ``results.md`` that ``python -m crnn_lit.evaluate`` wrote (kept as
``bench/results/eval_<run>.md``), everything else from the benchmark scripts' JSON records.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MARKER = re.compile(r"(<!-- gen:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /gen:(?P=name) -->)", re.DOTALL)


def _md(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("–" if v is None or v == "" else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _json(name: str):
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def evaluation(run: str) -> dict[str, float]:
    """The word accuracies of ``bench/results/eval_<run>.md`` (evaluate's Table-2 row), by column name."""
    lines = [ln for ln in (RESULTS / f"eval_{run}.md").read_text(encoding="utf-8").splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    values = [c.strip() for c in lines[2].strip("|").split("|")]
    return {h: float(v) for h, v in zip(header[1:], values[1:])}


def _bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text


def _eval_rows(models: list[tuple[str, str]], columns: list[str], bold_first: bool = False) -> list[list]:
    rows = []
    for i, (label, run) in enumerate(models):
        acc = evaluation(run)
        rows.append([_bold(label, bold_first and i == 0)]
                    + [_bold(f"{acc[c]:.1f}", bold_first and i == 0) if c in acc else None for c in columns])
    return rows


GREEDY = ["IIIT5K", "SVT", "IC15", "SVTP", "SVT 50"]
BEAM_LM = ["IIIT5K beam+LM", "SVT beam+LM", "IC15 beam+LM", "SVTP beam+LM"]


def readings(run: str) -> tuple[dict[str, float], dict[str, float]]:
    """(beam + LM, greedy) word accuracies of an evaluate run by benchmark name, whichever layout it was written
    in: headline greedy with ``<set> beam+LM`` columns (before beam + LM became the default), or headline
    beam + LM with ``<set> greedy`` columns."""
    acc = evaluation(run)
    if any(c.endswith(" greedy") for c in acc):
        return ({c: v for c, v in acc.items() if " " not in c},
                {c.removesuffix(" greedy"): v for c, v in acc.items() if c.endswith(" greedy")})
    return ({c.removesuffix(" beam+LM"): v for c, v in acc.items() if c.endswith(" beam+LM")},
            {c: v for c, v in acc.items() if " " not in c})


def cpu_hours(curve: str, stage: int = -1) -> float:
    """CPU-hours of training up to the kept checkpoint: the best ``val/acc`` row of a learning curve, which counts
    across the stages of a chain; ``stage`` picks one stage of a file holding several (each starts at epoch 0)."""
    with (RESULTS / f"learning_curve_{curve}.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    stages: list[list[dict]] = []
    for row in rows:
        if row["epoch"] == "0" or not stages:
            stages.append([])
        stages[-1].append(row)
    return float(max(stages[stage], key=lambda r: float(r["val/acc"] or 0))["cpu_hours"])


SETS = ["IIIT5K", "SVT", "IC15", "SVTP"]
# Other readers on the same images and protocol, measured once (their own decoding): IIIT5K, SVT, IC15, SVT-50.
RIVALS = [("Tesseract 5.3 (`--psm 7`)", 69.3, 65.4, 40.0, 79.3), ("EasyOCR 1.7.2 `english_g2`", 74.3, 56.6, 36.8, 86.7)]


def glance() -> str:
    """Results at a glance: every model a user can have, by its default reading and the paper's (greedy), with
    what it cost to train (0 for an imported model)."""
    models = [  # (label, evaluate run, learning curve or None: imported, no training here)
        ("**`ppocr_v6_small`** (.onnx + .pt): the default, PP-OCRv6 small imported exactly (Apache-2.0)",
         "ppocr_v6_small", None),
        ("`cpu_scene_text.pt`: the CRNN trained here (light net)", "cpu_scene_text_width_multiple", "cpu_scene_text"),
        ("`synthetic_only.pt`: rendered words only", "synthetic_only_default_reading", "synthetic_only"),
        ("`make train`: rendered words only, the quickstart", "make_train", "make_train"),
        ("`scene_text_medium` chain, stage 5: medium net (not shipped: tied on the hold-out, twice the cost)",
         "scene_text_medium_stage5", "scene_text_medium_stage5"),
        ("EasyOCR `english_g2` fine-tuned here (not shippable: its weights carry no licence)",
         "easyocr_finetune_lowercase", "easyocr_finetune_lowercase"),
    ]
    rows = []
    for label, run, curve in models:
        beam, greedy = readings(run)
        first = label.startswith("**")
        rows.append([label, f"{cpu_hours(curve):.2f}" if curve else "0", *(_bold(f"{beam[s]:.1f}", first)
                                                                          if s in beam else None for s in SETS),
                     " / ".join(f"{greedy[s]:.1f}" for s in SETS), f"{evaluation(run)['SVT 50']:.1f}"
                     if "SVT 50" in evaluation(run) else None])
    ref = _json("ppocr_reference.json")
    rows.append([ref["label"], None, *ref["greedy"], None, None])
    rows += [[label, None, iiit, svt, ic15, None, None, svt50] for label, iiit, svt, ic15, svt50 in RIVALS]
    rows.append(["the CRNN paper (GPU, 8.9 M Synth90k images)", None, None, None, None, None, "78.2 / 80.8 / – / –",
                 96.4])
    return _md(["model", "CPU-h", *(f"{s} default reading" for s in SETS), "greedy IIIT5K / SVT / IC15 / SVTP",
                "SVT-50"], rows)


def reader_choice() -> str:
    """The candidate networks for the default reader on the word and line hold-outs, each decoded with the word LM
    (bench/choose_reader.py --ckpts … → reader_choice_networks.json)."""
    rec = _json("reader_choice_networks.json")
    names = {"ppocr_v6_small_96.pt": "PP-OCRv6 small, imported (0 CPU-h)",
             "epoch000-acc0.8513.ckpt": "fine-tuned on words + lines, lr 1e-5, 1 epoch (0.10 CPU-h)",
             "epoch003-acc0.8356.ckpt": "fine-tuned on words + lines, lr 5e-5, 4 epochs (0.46 CPU-h)"}
    rows = []
    for cand in rec["candidates"]:
        greedy = next(t for t in cand["tried"] if t["reading"]["decoder"] == "greedy")
        best = cand["best"]
        setting = ", ".join(f"{k} {v}" for k, v in best["reading"].items() if k != "decoder")
        rows.append([names.get(Path(cand["ckpt"]).name, Path(cand["ckpt"]).name),
                     f"{100 * greedy['words']:.1f} / {100 * greedy['lines']:.1f}",
                     f"{best['reading']['decoder']} ({setting})" if setting else best["reading"]["decoder"],
                     f"{100 * best['words']:.1f} / {100 * best['lines']:.1f}", f"{100 * best['score']:.2f}"])
    return _md([f"candidate (hold-outs: {rec['holdouts']['words']} words, {rec['holdouts']['lines']} lines)",
                "greedy: words / lines", "best decoding", "words / lines", "mean"], rows)


def reader_lm() -> str:
    """The chosen network's decoding with each shipped LM: the best α, β per LM on the hold-outs (bench/choose_reader.py
    --lms … → reader_choice.json)."""
    rec = _json("reader_choice.json")
    rows = []
    for cand in rec["candidates"]:
        tried = cand["tried"]
        for lm in dict.fromkeys(t["reading"].get("lm") for t in tried):
            best = max((t for t in tried if t["reading"].get("lm") == lm), key=lambda t: t["score"])
            reading = best["reading"]
            setting = (f"`{lm}`, α {reading['lm_weight']}, β {reading['length_bonus']}" if lm else reading["decoder"])
            rows.append([_bold(setting, best == cand["best"]), f"{100 * best['words']:.1f}",
                         f"{100 * best['lines']:.1f}", _bold(f"{100 * best['score']:.2f}", best == cand["best"])])
    return _md([f"decoding (hold-outs: {rec['holdouts']['words']} words, {rec['holdouts']['lines']} lines)",
                "words", "lines", "mean"], rows)


def reader_min_width() -> str:
    """The default model's input width against its speed (bench/choose_reader.py --widths)."""
    rec = _json("reader_min_width.json")
    rows = [[r["min_width"], f"{100 * r['words']:.1f} / {100 * r['lines']:.1f}",
             f"{100 * r['words_greedy']:.1f} / {100 * r['lines_greedy']:.1f}", r["images_per_s"]] for r in rec["widths"]]
    return _md(["narrow crops padded to (px)", "default decoding: words / lines", "greedy: words / lines",
                "images/s (files to text, 2 cores, onnxruntime)"], rows)


def lines() -> str:
    """Line recipes on sroie_val under the line protocol (bench/line_reading.py), with their training cost."""
    recipes = [  # (label, bench/results/lines_<name>.json, learning curve or None: imported)
        (("**`ppocr_v6_small`**: the default reader: imported, read with the words + receipts LM (recipe b: "
          "fine-tuning the network did not pay)"), "ppocr_v6_small", None),
        ("light CRNN, rendered lines only (`experiment=crnn_lines`)", "crnn_lines_stage1", "crnn_lines"),
        ("light CRNN, then rendered + SROIE train lines (`experiment=crnn_lines_sroie`)", "crnn_lines_stage2",
         "crnn_lines_sroie"),
    ]
    rows = []
    for label, name, curve in recipes:
        if not (RESULTS / f"lines_{name}.json").is_file():
            continue
        hours = f"{cpu_hours(curve):.2f}" if curve else "0"
        rec = _json(f"lines_{name}.json")
        wide = rec["wider than 12.5x their height"]
        rows.append([label, hours, f"{rec['all']['line_accuracy']:.1f}", f"{rec['all']['cer']:.2f}",
                     f"{wide['line_accuracy']:.1f}", f"{wide['cer']:.2f}", round(rec["all"]["lines"] / rec["seconds"])])
    return _md(["model (default reading)", "CPU-h", "line accuracy", "CER %", "wide lines: accuracy", "CER %",
                "lines/s (one pass, machine not idle)"], rows)


def shipped() -> str:
    """Every shipped model: where it came from, what training here cost, how it reads by default, its speed and
    its licence (bench/results/shipped_models.json, the accuracies from each one's evaluate run)."""
    rows = []
    for model in _json("shipped_models.json")["models"]:
        beam = readings(model["eval"])[0] if model.get("eval") else {}
        speed = None
        if model.get("speed"):
            decoders = _json(model["speed"])["decoders"]
            speed = decoders.get("model", decoders.get("beam_lm"))["images_per_s_by_round"][-1]
        rows.append([f"`{model['file']}`", model["origin"], model["cpu_hours"], model["reading"],
                     " / ".join(f"{beam[s]:.1f}" for s in SETS) if beam else None, speed, model["licence"]])
    return _md(["file", "origin", "CPU-h here", "default reading", "IIIT5K / SVT / IC15 / SVTP", "images/s",
                "licence"], rows)


def model_choice() -> str:
    """The candidates for the default model on the real_train hold-out (bench/results/model_choice.json)."""
    rec = _json("model_choice.json")
    curves = {"cpu_scene_text.pt": ("cpu_scene_text", -1), "scene_text_medium_stage3.pt": ("scene_text_medium", 2),
              "scene_text_medium_stage4.pt": ("scene_text_medium_stage4", -1),
              "scene_text_medium_stage5.pt": ("scene_text_medium_stage5", -1)}
    rows = []
    for ckpt, by in rec["candidates"].items():
        name = Path(ckpt).name
        rows.append([f"`{name}`", f"{cpu_hours(*curves[name]):.2f}" if name in curves else None,
                     *(f"{by[d]['all']:.2f} / {by[d]['new_words']:.2f}" for d in ("greedy", "beam_lm"))])
    crops = next(iter(rec["candidates"].values()))["greedy"]["new_word_crops"]
    return _md(["candidate", "CPU-h", f"greedy: all {rec['holdout_crops']} / {crops} new-word crops",
                "beam + LM: all / new-word crops"], rows)


def levers() -> str:
    """Levers on top of the default reading, on the real_train hold-out (bench/results/model_choice.json)."""
    rec = _json("model_choice.json")
    base = next(iter(rec["candidates"].values()))
    rows = [["none: the default model alone", *(f"{base[d]['all']:.2f} / {base[d]['new_words']:.2f}"
                                                 for d in ("greedy", "beam_lm"))]]
    for name in dict.fromkeys(k.rsplit(", ", 1)[0] for k in rec["levers"]):
        by = {d: rec["levers"].get(f"{name}, {d}") for d in ("greedy", "beam_lm")}
        rows.append([name, *(f"{v['all']:.2f} / {v['new_words']:.2f}" if v else None for v in by.values())])
    return _md(["lever", "greedy: all / new-word crops", "beam + LM: all / new-word crops"], rows)


def decoding() -> str:
    """Every decoding of the shipped model: one evaluate run."""
    acc = evaluation("cpu_scene_text_width_multiple")
    speed = _json("decode_speed.json")

    def ms(x: float) -> str:
        return f"{x:.2f}"

    rows = [
        ["greedy (`decoder=greedy`, the paper's lexicon-free)", *(acc[c] for c in GREEDY[:4]),
         ms(speed["greedy"]["ms_per_image"])],
        ["**beam + LM** (`decoder=beam_lm`, its default)", *(f"**{acc[c]}**" for c in BEAM_LM),
         f"{ms(speed['beam_lm']['ms_per_image'])} ({ms(speed['beam_lm']['first_pass_ms_per_image'])} first pass)"],
        ["lexicon, strict (paper): 90k within N_δ / SVT-50 / IC15 full", acc["IIIT5K 90k"],
         f"{acc['SVT 90k']} / {acc['SVT 50']}", acc["IC15 full"], None,
         ms(speed["lexicon"]["one_image_at_a_time_ms"]["median"]) + " (90k, median)"],
        ["lexicon, open (τ = 10, fused with the LM): 90k", acc["IIIT5K 90k open"], acc["SVT 90k open"], None, None,
         None],
    ]
    return _md(["decoding", "IIIT5K", "SVT", "IC15", "SVTP", "ms/image"], rows)


def chain() -> str:
    """The models towards the paper's level, greedy and beam + LM."""
    models = [
        ("`synthetic_only.pt` (rendered words only)", "synthetic_only_default_reading"),
        ("`scene_text_stage1.pt` (light net, + real_train)", "scene_text_stage1"),
        ("`cpu_scene_text.pt` (light net, from scratch, one run)", "cpu_scene_text_width_multiple"),
        ("`scene_text_medium_stage1.pt` (3.9 M params, from scratch)", "scene_text_medium_stage1"),
        ("`scene_text_medium_stage2.pt`", "scene_text_medium_stage2"),
        ("`scene_text_medium_stage3.pt`", "scene_text_medium_stage3"),
        ("`scene_text_medium_stage4.pt` (60 % real crops)", "scene_text_medium_stage4"),
        ("`scene_text_medium_stage5.pt` (60 % real crops)", "scene_text_medium_stage5"),
    ]
    rows = []
    for label, run in models:
        beam, greedy = readings(run)
        svt50 = evaluation(run).get("SVT 50")
        rows.append([label, *(greedy.get(c) for c in SETS), svt50, *(beam.get(c) for c in SETS)])
    rows.append(["the chain's targets (within 12 CPU-h)", 78.2, 75, 55.7, 60, 96.4, None, None, None, None])
    return _md(["model", *SETS, "SVT-50", *BEAM_LM], rows)


def tps_ablation() -> str:
    """transform=none vs tps_light, each a fine-tune of cpu_scene_text.pt on the same data and schedule."""
    rows = []
    for label, run in [("`none` (the paper's)", "tps_ablation_none"), ("`tps_light`", "tps_ablation_tps_light")]:
        with (RESULTS / f"learning_curve_{run}.csv").open(encoding="utf-8") as f:
            curve = list(csv.DictReader(f))
        best = max(curve, key=lambda r: float(r["val/acc"]))
        acc = evaluation(run)
        rows.append([label, f"{float(curve[-1]['cpu_hours']):.2f}", f"{100 * float(best['val/acc']):.1f}",
                     *(f"{acc[c]:.1f}" for c in ["IIIT5K greedy", "SVT greedy", "IC15 greedy", "SVTP greedy"]),
                     *(f"{acc[c]:.1f}" for c in ["IIIT5K", "SVT", "IC15", "SVTP"])])
    return _md(["transform", "CPU-h", "hold-out (best)", *GREEDY[:4], *BEAM_LM], rows)


def renderer() -> str:
    """Rendered words only, same recipe, only the renderer differs (greedy). The shipped file is shown by its one
    evaluate run (the glance table's); the v1 run was read by the evaluate of its time."""
    rows = []
    for label, run in [("**`renderer=default`** → `synthetic_only.pt`", "synthetic_only_default_reading"),
                       ("`renderer=v1` (the first renderer)", "synthetic_only_v1")]:
        greedy, acc = readings(run)[1], evaluation(run)
        rows.append([label, *(f"{greedy[s]:.1f}" for s in SETS), f"{acc['SVT 50']:.1f}",
                     f"{acc['IIIT5K 90k open']:.1f}"])
    rows.append(["CRNN paper (Synth90k, 8.9 M images, GPU)", 78.2, 80.8, None, None, 96.4, None])
    return _md(["renderer", *GREEDY[:4], "SVT-50", "IIIT5K 90k open"], rows)


def easyocr() -> str:
    models = [("**english_g2 fine-tuned, lowercase 36** (6 × 6,000 images, 0.94 CPU-h)", "easyocr_finetune_lowercase"),
              ("english_g2 fine-tuned, its own 97 classes (4 × 6,000 images, 0.61 CPU-h)",
               "easyocr_finetune_own_charset"),
              ("ours from scratch (`cpu_scene_text.pt`, 2.6 CPU-h)", "cpu_scene_text_width_multiple")]
    return _md(["model", *GREEDY[:4], "SVT-50", "IIIT5K beam+LM"], _eval_rows(models, [*GREEDY, "IIIT5K beam+LM"]))


def ablation() -> str:
    """The renderer ablation (bench/results/renderer_ablation.json): one row per variant, in the record's order,
    real_train's change against `default`."""
    records = _json("renderer_ablation.json")["variants"]
    base = next((r["real_train"]["combined"] for r in records if r["variant"] == "default"), None)
    header = ("| variant | overrides | CPU-h | real_train IIIT5K / SVT / IC15 | real_train combined | IIIT5K | SVT "
              "| IC15 | SVTP | SVT-50 |")
    rows = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        real, bench = r["real_train"], r["benchmarks"]
        delta = None if base is None or r["variant"] == "default" else real["combined"] - base
        change = "" if delta is None else " (±0.0)" if abs(delta) < 0.05 else f" ({delta:+.1f})".replace("-", "−")
        threads = re.search(r"(\d+) thread", r.get("budget", ""))
        cpu = f"{r['cpu_hours']:.2f}" + (f" ({threads[1]} threads)" if threads and threads[1] != "1" else "")
        rows.append(f"| `{r['variant']}` | {', '.join(f'`{o}`' for o in r['overrides']) or '–'} | {cpu} "
                    f"| {real['IIIT5K']:.1f} / {real['SVT']:.1f} / {real['IC15']:.1f} | {real['combined']:.1f}{change} "
                    + "".join(f"| {bench[k]:.1f} " for k in ("IIIT5K", "SVT", "IC15", "SVTP", "SVT-50")) + "|")
    return "\n".join(rows) + "\n"


def models() -> str:
    stats = {(m["backbone"], m["rnn"]): m for m in _json("model_stats.json")["models"]}
    rows = []
    for backbone, rnn, what in [("vgg_light", "bilstm_light", "the default (CPU-light)"),
                                ("vgg_medium", "bilstm", "`experiment=scene_text_medium`"),
                                ("vgg", "bilstm", "the paper's"), ("resnet", "bilstm", "DTRB's ResNet extractor")]:
        m = stats[(backbone, rnn)]
        rows.append([f"`backbone={backbone} rnn={rnn}`", what, f"{m['params'] / 1e6:.2f} M",
                     f"{m['gflops_32x100']:.2f}"])
    return _md(["network", "what", "parameters", "GFLOPs at 32×100"], rows)


def transforms() -> str:
    """The transformation stages' own cost, beside the CRNN they sit in front of."""
    rec = _json("model_stats.json")
    stats = {t["transform"]: t for t in rec["transforms"]}
    light = {(m["backbone"], m["rnn"]): m for m in rec["models"]}[("vgg_light", "bilstm_light")]
    rows = [[f"`transform={name}`", what, f"{stats[name]['params'] / 1e6:.3f} M", f"{stats[name]['gflops_32x100']:.3f}"]
            for name, what in [("none", "the paper's: no stage (default)"),
                               ("tps", "DTRB's TPS: localization net 64-128-256-512, F = 20"),
                               ("tps_light", "the same, localization net at 1/4 of the widths")]]
    rows.append(["for scale: the default CRNN", "`backbone=vgg_light rnn=bilstm_light`", f"{light['params'] / 1e6:.3f} M",
                 f"{light['gflops_32x100']:.3f}"])
    return _md(["stage", "what", "parameters", "GFLOPs at 32×100"], rows)


def holdout_decoding() -> str:
    """Greedy vs beam + LM on the real_train hold-out: accuracy and reading speed, from bench/inference_speed.py."""
    rows = []
    for decoder, label in [("greedy", "greedy (`decoder=greedy`)"), ("beam_lm", "**beam + LM** (its default)")]:
        rec = _json(f"inference_speed_holdout_{decoder}.json")
        torch_, ort = rec["backends"]["torch_eager"], rec["backends"]["onnxruntime_fp32"]
        rows.append([label, f"{100 * torch_['accuracy']:.2f}", f"{torch_['batched_images_per_s']:.0f}",
                     f"{ort['batched_images_per_s']:.0f}"])
    return _md([f"decoding ({rec['images']} hold-out crops)", "word accuracy %",
                f"torch images/s (1 thread, batch {rec['batch_size']})", "ONNX Runtime images/s"], rows)


def predict_speed() -> str:
    """The default reading's end-to-end speed, files to text, on all cores (bench/predict_speed.py)."""
    rec = _json("predict_speed.json")
    load = rec["environment"]["load_average_1_5_15min"][0]
    rows = [[f"`decoder={name}`" + (" (its default)" if name in ("model", "beam_lm") else ""), by["images"],
             by["images_per_s_by_round"][-1], by["images_per_s_by_round"][0]] for name, by in rec["decoders"].items()]
    return _md([f"`python -m crnn_lit.predict inputs=<folder>`, {rec['threads']} threads (load {load:.1f})", "images",
                "images/s", "images/s, first read of the process"], rows)


def line_windows() -> str:
    """Wide lines read squeezed, whole or in windows by a word model (bench/results/line_windows.json)."""
    rec = _json("line_windows.json")
    rows = [[name, f"{100 * way['exact']:.1f}", f"{100 * way['cer']:.1f}"] for name, way in rec["ways"].items()]
    return _md([(f"`{rec['model']}`, {rec['decoder']}: the {rec['lines']} sroie_val lines wider than 12.5× their "
                "height"), "exact %", "CER %"], rows)


def reading_threads() -> str:
    """Wall time of the default reading beside busy work, by thread setting (bench/predict_speed.py --threads):
    on a machine otherwise near idle (reading_threads_idle.json) and on one shared with other work
    (reading_threads.json, the settings taking turns round by round)."""
    records = [("near-idle machine", _json("reading_threads_idle.json")), ("machine shared (load 4-5)",
                                                                          _json("reading_threads.json"))]
    columns = [(f"{where}, {'+ 1 busy loop' if busy.endswith('_1') else 'no busy loop'}", rec["settings"][busy])
               for where, rec in records for busy in sorted(rec["settings"])]
    default = str(records[0][1]["torch_default_threads"])
    names = {"1": "`threads=1`", default: f"`threads={default}` (torch's default)", "auto": "`threads=None` (ours)"}
    rows = []
    for setting, name in names.items():
        cells = []
        for _, settings in columns:
            row = settings[setting]
            wall, one = median([r["wall_s"] for r in row["rounds"]]), median([r["wall_s"] for r in settings["1"]["rounds"]])
            chosen = ", ".join(f"{n} thread(s) ×{k}" for n, k in row.get("threads_chosen", {}).items())
            cells.append(f"{wall:.1f} s, ×{wall / one:.2f}" + (f" ({chosen})" if chosen else ""))
        rows.append([name, *cells])
    images = records[0][1]["images"]
    return _md([f"{images} IIIT5K crops, default reading: median wall, vs 1 thread", *(c for c, _ in columns)], rows)


def fault() -> str:
    kills = _json("fault_resume.json")["kills"]
    rows = [[i, f"{k['killed_after_step']} (epoch {k['epoch_at_kill']}, batch {k['step_in_epoch_at_kill']})",
             f"step {k['checkpoint_step']}, {'intact' if k['checkpoint_intact'] else 'TORN'}", k["steps_lost"],
             k["checkpoint_step"]] for i, k in enumerate(kills, 1)]
    return _md(["kill `-9`", "trained up to step", "`last.ckpt` left", "steps lost", "next run resumed from"], rows)


def turn_tall() -> str:
    records = _json("turn_tall.json")["records"]
    ratios = sorted({r["turn_tall"] for r in records if r["turn_tall"] is not None})
    by = {(r["ckpt"], r["turn_tall"]): r["holdout_greedy"] for r in records}
    rows = [[f"`{Path(c).name}`", *(by[(c, t)] for t in [None, *ratios])] for c in dict.fromkeys(r["ckpt"]
                                                                                                   for r in records)]
    return _md(["model (686 hold-out crops, greedy %)", "off", *map(str, ratios)], rows)


def scale() -> str:
    """The cluster arithmetic of ``bench/scale.py``: epoch start, loader workers per GPU, checkpoint overhead."""
    rec = _json("scale.json")
    start, rate, need = rec["epoch_start_s_per_million"], rec["images_per_cpu_s"], rec["workers_needed_per_gpu_at_10k"]
    rows = [["epoch start, CPU s per million samples (archive in the page cache)",
             (f"first run {start['cold']:.1f}, warm {start['warm']:.3f}, second run {start['second_run']:.3f}")]]
    cold = rec.get("size_index_build_evicted_s_per_million")
    if cold:
        rows.append(["first run on an archive out of the page cache, wall s per million (size index build)",
                     f"{cold['readahead']['wall']:.0f} with readahead (was {cold['no_readahead']['wall']:.0f} without)"])
    balance = rec.get("rank_balance")
    if balance:
        share, before = balance["useful_share_per_step"], balance["dealt_round_robin"]
        rows.append(["real pixels per processed pixel, per step at 1 / 8 / 32 ranks (real_train widths, batch 64)",
                     " / ".join(f"{share[n]:.3f}" for n in ("1", "8", "32")) + " (round-robin: "
                     + " / ".join(f"{before[n]:.3f}" for n in ("1", "8", "32")) + ")"])
    shapes = rec.get("input_shapes_per_epoch")
    if shapes:
        rows.append(["input shapes per epoch, widths as they come → rounded to 8 px (GPU)",
                     f"{shapes['pad_multiple_1']['distinct_shapes']} → {shapes['pad_multiple_8']['distinct_shapes']}"])
    if "host_syncs_per_step" in rec:
        rows.append(["host syncs inside `training_step`", f"{rec['host_syncs_per_step']:g} per step"])
    names = {"lmdb": "LMDB", "lmdb_strong": "LMDB + `augment=strong`", "renderer": "renderer (`data=synthetic`)"}
    rows += [[f"one loader worker, {label}", (f"{rate[k]:,.0f} images per CPU-second → **{need[k]}** workers per GPU "
              "at 10k images/s")] for k, label in names.items()]
    rows += [["workers per GPU the defaults give (SLURM `cpus_per_task` default, `num_workers: auto`)",
              f"**{rec['default_workers_per_gpu']}**"],
             ["`last.ckpt` saves at 10k images/s (paper net, full state)",
              f"{100 * rec['checkpoint_overhead_fraction_at_10k']:.2f} % of training time"]]
    return _md(["`bench/scale.py`", "measured on 2 CPU cores, extrapolated"], rows)


def benchmarks() -> str:
    """What `make bench` runs and what each script measured last (the JSON is the record)."""
    train = _json("train_throughput.json")
    render = _json("renderer.json")
    stats = {(m["backbone"], m["rnn"]): m for m in _json("model_stats.json")["models"]}
    loader = _json("loader_throughput.json")["loader"]
    speed = _json("decode_speed.json")
    infer = _json("inference_speed.json")["backends"]
    opts = _json("train_speed_options_vgg_light_bilstm_light.json")["images_per_s"]
    fault = _json("fault_resume.json")
    scale_rec = _json("scale.json")
    light, paper = stats[("vgg_light", "bilstm_light")], stats[("vgg", "bilstm")]
    rows = [
        ["`train_throughput.py`", "paper net training, crnn_lit vs a plain PyTorch loop",
         (f"{train['framework_images_per_s']} vs {train['plain_loop_images_per_s']} images/s, "
          f"ratio **{train['ratio_framework_over_plain']}**"), "`train_throughput.json`"],
        ["`renderer_throughput.py`", "the embedded renderer, one core",
         (f"**{render['images_per_s']:.0f}** images/s warm ({render['images_per_s_cold']:.0f} cold); "
          f"{render['renderer_over_training']}× what the light net trains on"), "`renderer.json`"],
        ["`model_stats.py`", "parameters and GFLOPs of every backbone × rnn",
         (f"default {light['params'] / 1e6:.2f} M / {light['gflops_32x100']:.2f}; "
          f"paper {paper['params'] / 1e6:.2f} M / {paper['gflops_32x100']:.2f}"), "`model_stats.json`"],
        ["`loader_throughput.py`", "data loaders, 2 workers, batch 64",
         ", ".join(f"{k.split(' ')[0]} {v['images_per_s']:,.0f}" for k, v in loader.items() if "+" not in k)
         + " images/s", "`loader_throughput.json`"],
        ["`train_speed_options.py`", "plain-loop training speed per option (light net)",
         ", ".join(f"{k} {v:.0f}" for k, v in opts.items()) + " images/s",
         "`train_speed_options_*.json`"],
        ["`decode_speed.py --ckpt`", "decoders, ms/image, one thread",
         (f"greedy {speed['greedy']['ms_per_image']:.2f}, beam {speed['beam']['ms_per_image']:.2f}, "
          f"beam + LM {speed['beam_lm']['ms_per_image']:.2f}, lexicon 90k "
          f"{speed['lexicon']['one_image_at_a_time_ms']['median']:.2f} (median)"), "`decode_speed.json`"],
        ["`inference_speed.py --ckpt`", "network + greedy on IIIT5K, 2 threads, batched by width",
         ", ".join(f"{k} {v['batched_images_per_s']:,.0f}" for k, v in infer.items()) + " images/s",
         "`inference_speed.json`"],
        ["`fault_resume.py`", "3 × `kill -9` mid-epoch + `resume=auto`",
         f"≤ {fault['max_steps_lost']} steps lost per kill; final weights "
         + ("identical to" if fault["weights_equal_to_uninterrupted_run"] else "differ from")
         + " an uninterrupted run", "`fault_resume.json`"],
        ["`scale.py`", "the cluster path: epoch start per million samples, loader workers per GPU, checkpoint cost",
         (f"epoch start {scale_rec['epoch_start_s_per_million']['warm']:.3f} s per million (warm); "
          f"{scale_rec['default_workers_per_gpu']} workers per GPU by default; last.ckpt "
          f"{100 * scale_rec['checkpoint_overhead_fraction_at_10k']:.2f} % of training"), "`scale.json`"],
    ]
    return _md(["script", "measures", "last result", "record"], rows)


TABLES: dict[str, Callable[[], str]] = {
    "line-windows": line_windows,
    "glance": glance, "model-choice": model_choice, "levers": levers, "decoding": decoding, "chain": chain,
    "renderer": renderer, "easyocr": easyocr,
    "ablation": ablation, "models": models, "fault": fault, "turn-tall": turn_tall, "benchmarks": benchmarks,
    "scale": scale, "tps-ablation": tps_ablation, "transforms": transforms, "holdout-decoding": holdout_decoding,
    "predict-speed": predict_speed, "shipped": shipped, "reader-choice": reader_choice, "reader-lm": reader_lm,
    "reader-min-width": reader_min_width, "lines": lines, "reading-threads": reading_threads,
}


def render(text: str, cache: dict[str, str]) -> str:
    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"unknown generated table {name!r}; known: {', '.join(TABLES)}")
        if name not in cache:
            cache[name] = TABLES[name]()
        return match.group(1) + cache[name] + match.group(4)

    return MARKER.sub(fill, text)


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when a table is out of date")
    args = ap.parse_args(argv)
    cache: dict[str, str] = {}
    stale = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        new = render(text, cache)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"generated tables out of date in {', '.join(map(str, stale))}: run `python docs/gen_tables.py`",
              file=sys.stderr)
        return 1
    if not args.check:
        print(f"{len(cache)} tables, {len(stale)} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
