"""Evaluate a checkpoint on the standard benchmarks: ``python -m crnn_lit.evaluate ckpt=… [benchmark_root=…]``.

Writes to the run directory: ``results.md`` (the paper's Table-2 layout and a detail table), ``results.json``
and ``predictions/<benchmark>_<lexicon>.tsv`` (every image: key, label, prediction, confidence, correct).
Every benchmark image counts: an unreadable image is an error (empty prediction), never silently dropped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from crnn_lit.charset import Charset
from crnn_lit.checkpoint import load_model
from crnn_lit.config import ConfigError, check_required, resolve_ckpt
from crnn_lit.data.sample import BadSample
from crnn_lit.data.sources import detect_format, open_source
from crnn_lit.inference import Timing, TorchBackend, TurnTall, reading_preprocess, recognize, width_batches
from crnn_lit.metrics import TextMetrics, protocol_normalize
from crnn_lit.preprocess import Preprocess
from crnn_lit.task import task
from crnn_lit.transcription import Decoder, LexiconDecoder
from crnn_lit.transcription.lexicon import Lexicon

log = logging.getLogger("crnn_lit.evaluate")
# the lexicon-free columns beside the headline one (`decoder`), by their config key (conf/evaluate.yaml)
EXTRA_COLUMNS = {"lm_decoder": "beam+LM", "greedy_decoder": "greedy"}


@dataclass
class Column:
    benchmark: str
    lexicon: str  # "none" or the lexicon setting's name (50, 1k, full, 90k, …)
    images: int
    unreadable: int
    accuracy: float
    ned: float
    cer: float
    mean_confidence: float
    images_per_s: float  # network throughput (forward + log-softmax), batched by width
    decode_ms_per_image: float


def find_benchmark(bench: DictConfig) -> tuple[Path | None, str]:
    """The first of the benchmark's candidate paths (``path``: one, or a list such as ours, DTRB's and parseq's
    folder names) that holds data, and its format; (None, what was tried) when none does."""
    candidates = [bench.path] if isinstance(bench.path, str) else list(bench.path)
    for candidate in candidates:
        try:
            return Path(candidate), detect_format(candidate, "test") if bench.format == "auto" else bench.format
        except ValueError:
            continue
    return None, "not found: " + ", ".join(str(c) for c in candidates)


def read_source(source, preprocess: Preprocess | TurnTall):
    """Preprocessed images, keys and raw labels of every readable sample of a source; the unreadable ones apart,
    as ``(key, label, reason)`` (they count as errors in a benchmark). ``preprocess``: the model's, or a
    :class:`TurnTall` around it."""
    images, keys, labels, unreadable = [], [], [], []
    for i in range(len(source)):
        try:
            sample = source[i]
        except BadSample as err:
            unreadable.append((err.key, source.label(i), err.reason))
            continue
        images.append(preprocess(sample.image))
        keys.append(sample.key)
        labels.append(sample.label)
    return images, keys, labels, unreadable


def _load_benchmark(path: Path, fmt: str, preprocess: Preprocess | TurnTall):
    """:func:`read_source` of one benchmark (folder or LMDB)."""
    return read_source(open_source(path, fmt, split="test"), preprocess)


def _lexicon_missing(setting: DictConfig) -> str | None:
    """Why a lexicon setting cannot be used (its file is not on disk), or None."""
    path = setting.get("file") or setting.get("per_image")
    return None if path is None or Path(path).is_file() else f"lexicon file not found: {path}"


def _lexicon_columns(name: str, setting: DictConfig, charset: Charset, cfg: DictConfig) -> list[tuple]:
    """(column name, decoder, per-image lexicon or None) for one lexicon setting: {file: path} gives the strict
    column and, with ``lexicon_decoder.open_ratio``, an open-vocabulary one (unless the setting says ``open:
    false``: a closed vocabulary holding every answer); {per_image: tsv} a strict one."""
    def build(lexicon, **overrides) -> LexiconDecoder:
        return instantiate(cfg.lexicon_decoder, lexicon=lexicon, **overrides)(charset)

    if "file" in setting:
        lexicon = Lexicon.from_file(setting.file)
        columns = [(name, build(lexicon, open_ratio=None), None)]
        if cfg.lexicon_decoder.get("open_ratio") is not None and setting.get("open", True):
            columns.append((f"{name} open", build(lexicon), None))
        return columns
    if "per_image" in setting:
        return [(name, build(None, open_ratio=None), Lexicon.from_tsv(setting.per_image).normalized(charset))]
    raise ConfigError(f"a lexicon setting needs `file` or `per_image`, got {OmegaConf.to_container(setting)}")


def _score(name: str, lexicon: str, decoder: Decoder, per_image, recognized, unreadable, case_sensitive: bool,
           timing: Timing, out_dir: Path) -> tuple[Column, list[tuple[str, str, str, float]]]:
    """The column's figures (and predictions/<name>_<lexicon>.tsv) and its errors: (key, label, reading, conf)."""
    metrics = TextMetrics(normalize=True, case_sensitive=case_sensitive)
    rows, confidences, errors = [], [], []
    start = time.perf_counter()
    for r in recognized:
        lexicons = per_image.lists_for(r.keys) if per_image is not None else None
        predictions = decoder.decode(r.log_probs, r.lengths, lexicons=lexicons)
        metrics.update([p.text for p in predictions], r.labels)
        for key, label, p in zip(r.keys, r.labels, predictions):
            correct = protocol_normalize(p.text, case_sensitive) == protocol_normalize(label, case_sensitive)
            rows.append(f"{key}\t{label}\t{p.text}\t{p.confidence:.4f}\t{int(correct)}")
            confidences.append(p.confidence)
            if not correct:
                errors.append((key, label, p.text, p.confidence))
    decode_s = time.perf_counter() - start
    if unreadable:  # errors: nothing could be read
        metrics.update([""] * len(unreadable), [label for _, label, _ in unreadable])
        rows += [f"{key}\t{label}\t\t0.0000\t0\t# unreadable: {reason}" for key, label, reason in unreadable]
    (out_dir / "predictions").mkdir(parents=True, exist_ok=True)
    (out_dir / "predictions" / f"{name}_{lexicon}.tsv").write_text(
        "key\tlabel\tprediction\tconfidence\tcorrect\n" + "\n".join(rows) + "\n", encoding="utf-8")
    values = {k: float(v) for k, v in metrics.compute().items()}
    n = int(metrics.total)
    return Column(name, lexicon, n, len(unreadable), values["acc"], values["ned"], values["cer"],
                  sum(confidences) / max(len(confidences), 1), timing.images_per_s,
                  1000 * decode_s / max(len(confidences), 1)), errors


def error_sheet(errors: list[tuple[str, str, str, float]], images: dict[str, torch.Tensor], path: Path,
                limit: int = 60, font: Path | None = None) -> None:
    """A PNG of the most confident errors first: what the network saw (its input, height-normalized), the label,
    the reading and its confidence — the first thing to look at, and what tells the renderer work what fails."""
    from PIL import Image, ImageDraw, ImageFont

    shown = sorted(errors, key=lambda e: -e[3])[:limit]
    scale, cell_w, text_w = 2, 240, 260
    height = max((images[e[0]].shape[-2] for e in shown), default=0)  # the model's input height
    row_h = max(height * scale + 8, 48)  # room for the two text lines
    sheet = Image.new("RGB", (cell_w * scale // 2 * 2 + text_w, max(1, len(shown)) * row_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    face = ImageFont.truetype(str(font), 16) if font is not None and font.is_file() else ImageFont.load_default()
    for i, (key, label, reading, confidence) in enumerate(shown):
        pixels = ((images[key].float() + 1.0) * 127.5).clamp(0, 255).byte()  # the [-1, 1] input, back to uint8
        image = Image.fromarray(pixels.permute(1, 2, 0).squeeze(-1).numpy()).convert("RGB")
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
        sheet.paste(image.crop((0, 0, min(image.width, cell_w * scale // 2 * 2), image.height)), (0, i * row_h))
        x = cell_w * scale // 2 * 2 + 8
        draw.text((x, i * row_h + 4), f"{label}  →  {reading or '∅'}", fill=(0, 0, 0), font=face)
        draw.text((x, i * row_h + 26), f"{confidence:.2f}  {key[-28:]}", fill=(110, 110, 110), font=face)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


def markdown(columns: list[Column], combined: float | None, ckpt: str) -> str:
    head = " | ".join(f"{c.benchmark} {c.lexicon if c.lexicon != 'none' else ''}".strip() for c in columns)
    acc = " | ".join(f"{100 * c.accuracy:.1f}" for c in columns)
    lines = [f"Word accuracy (%) of `{ckpt}` — lowercase, [0-9a-z], exact match; lexicon column = lexicon size/name",
             "", f"| model | {head} | combined |", "|---" * (len(columns) + 2) + "|",
             f"| crnn_lit | {acc} | {'' if combined is None else f'{100 * combined:.1f}'} |", "",
             "| benchmark | lexicon | images | unreadable | accuracy | 1-NED | CER | mean conf. | images/s | decode ms/img |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {c.benchmark} | {c.lexicon} | {c.images} | {c.unreadable} | {100 * c.accuracy:.2f} | {c.ned:.4f} | "
              f"{c.cer:.4f} | {c.mean_confidence:.3f} | {c.images_per_s:.0f} | {c.decode_ms_per_image:.2f} |"
              for c in columns]
    return "\n".join(lines) + "\n"


def evaluate(cfg: DictConfig) -> dict:
    check_required(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt = resolve_ckpt(cfg)
    loaded = load_model(ckpt)
    preprocess = Preprocess.from_record(loaded.config)
    backend = TorchBackend(loaded.model)
    out_dir = Path(cfg.paths.output_dir)
    columns: list[Column] = []
    skipped: dict[str, str] = {}
    turned: dict[str, int] = {}
    for key, bench in cfg.benchmarks.items():
        if cfg.only and key not in cfg.only:
            continue
        path, fmt = find_benchmark(bench)
        if path is None:
            skipped[bench.name] = fmt
            log.warning("skipping %s: %s", bench.name, skipped[bench.name])
            continue
        prepare = reading_preprocess(backend, preprocess, cfg.turn_tall)
        images, keys, labels, unreadable = _load_benchmark(path, fmt, prepare)
        if cfg.turn_tall:
            turned[bench.name] = prepare.turned
            log.info("%s: %d of %d crops read turned (turn_tall=%s)", bench.name, prepare.turned, len(images),
                     cfg.turn_tall)
        timing = Timing()
        batches = width_batches(images, cfg.batch_size, keys, labels, output_length=backend.output_length,
                                width_multiple=preprocess.width_multiple)
        recognized = list(recognize(backend, batches, timing))
        settings = [("none", instantiate(cfg.decoder)(loaded.charset), None)]
        for key, column in EXTRA_COLUMNS.items():  # lexicon-free too, unless it is the headline decoder itself
            if cfg.get(key) and cfg[key] != cfg.decoder:
                settings.append((column, instantiate(cfg[key])(loaded.charset), None))
        for name, setting in (bench.lexicons or {}).items():
            missing = _lexicon_missing(setting)
            if missing:
                skipped[f"{bench.name} {name}"] = missing
                log.warning("skipping the %s %s column: %s", bench.name, name, missing)
                continue
            settings += _lexicon_columns(name, setting, loaded.charset, cfg)
        for lexicon, decoder, per_image in settings:
            column, errors = _score(bench.name, str(lexicon), decoder, per_image, recognized, unreadable,
                                    cfg.case_sensitive, timing, out_dir)
            columns.append(column)
            if lexicon == "none" and cfg.error_sheet:
                error_sheet(errors, dict(zip(keys, images, strict=True)), out_dir / "errors" / f"{bench.name}.png",
                            limit=cfg.error_sheet, font=Path(cfg.paths.data_dir) / "fonts/dejavu/DejaVuSansMono.ttf")
            log.info("%s %s: accuracy %.2f %% (%d images)", bench.name, lexicon, 100 * column.accuracy, column.images)
    free = [c for c in columns if c.lexicon == "none"]
    combined = sum(c.accuracy * c.images for c in free) / sum(c.images for c in free) if free else None
    table = markdown(columns, combined, ckpt)
    (out_dir / "results.md").write_text(table, encoding="utf-8")
    result = {"ckpt": ckpt, "protocol": "case-sensitive [0-9a-zA-Z]" if cfg.case_sensitive else
              "lowercase [0-9a-z], exact match", "combined_accuracy_lexicon_free": combined,
              "columns": [asdict(c) for c in columns], "skipped": skipped,
              "turn_tall": {"min_aspect": cfg.turn_tall, "turned": turned} if cfg.turn_tall else None}
    (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table)
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    print(f"written: {out_dir / 'results.md'}, {out_dir / 'results.json'}, {out_dir / 'predictions'}/")
    return result


@task("evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
