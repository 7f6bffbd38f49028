"""Evaluate a checkpoint on the standard benchmarks: ``python -m crnn_lit.evaluate ckpt=… [benchmark_root=…]``.

Writes to the run directory: ``results.md`` (the paper's Table-2 layout and a detail table), ``results.json``
and ``predictions/<benchmark>_<lexicon>.tsv`` (every image: key, label, prediction, confidence, correct).
Every benchmark image counts: an unreadable image is an error (empty prediction), never silently dropped.
"""

from __future__ import annotations

import heapq
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from crnn_lit.charset import Charset
from crnn_lit.config import SHARED_DATA_ENV, ConfigError, check_required, resolve_ckpt
from crnn_lit.data.sources import detect_format, open_source
from crnn_lit.metrics import TextMetrics, compare_form
from crnn_lit.preprocess import Preprocess, to_pixels
from crnn_lit.reading.inference import (
    Recognized,
    Timing,
    bound_kernel_cache,
    chunked,
    squeeze_warning,
    squeezed,
    too_narrow,
)
from crnn_lit.reading.recognizer import Recognizer
from crnn_lit.task import task
from crnn_lit.transcription import Decoder, LexiconDecoder
from crnn_lit.transcription.lexicon import Lexicon

log = logging.getLogger("crnn_lit.evaluate")
# the lexicon-free columns beside the headline one (`decoder`), by their config key (conf/evaluate.yaml)
EXTRA_COLUMNS = {"lm_decoder": "beam+LM", "greedy_decoder": "greedy"}
PROTOCOLS = {False: "lowercase, [0-9a-z], exact match", True: "case-sensitive, [0-9a-zA-Z], exact match"}
LINE_PROTOCOL = "line protocol: upper case, whitespace runs made one space, ends stripped, exact match"


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


def own_test_sets(inputs: str | list[str], protocol: str = "word") -> DictConfig:
    """``inputs=<path>`` or ``inputs=[a,b]``: your own test sets (a folder with its labels file, a labels file, or an
    LMDB tree) as benchmarks without lexicons, each named after its folder (or labels file), scored under
    ``protocol``."""
    sets: dict[str, dict] = {}
    for path in [inputs] if isinstance(inputs, str) else list(inputs):
        try:
            fmt = detect_format(path, "test")
        except ValueError as err:
            raise ConfigError(f"inputs: {err}") from None
        base = Path(path).stem if Path(path).is_file() else Path(path).name
        name = next(n for n in [base, *(f"{base}_{k}" for k in range(2, len(sets) + 3))] if n not in sets)
        sets[name] = {"name": name, "path": str(path), "format": fmt, "lexicons": {}, "protocol": protocol}
    return OmegaConf.create(sets)


def _lexicon_missing(setting: DictConfig) -> str | None:
    """Why a lexicon setting cannot be used (its file is not on disk, or empty), or None."""
    path = setting.get("file") or setting.get("per_image")
    if path is None:
        return None
    if not Path(path).is_file():
        return f"lexicon file not found: {path}"
    return f"lexicon file is empty: {path}" if Path(path).stat().st_size == 0 else None


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
            # without an LM the open test is the plain ratio, another rule: another column name
            columns.append((f"{name} open" if cfg.lexicon_decoder.get("lm") else f"{name} open-ratio", build(lexicon),
                            None))
        return columns
    if "per_image" in setting:
        return [(name, build(None, open_ratio=None), Lexicon.from_tsv(setting.per_image).normalized(charset))]
    raise ConfigError(f"a lexicon setting needs `file` or `per_image`, got {OmegaConf.to_container(setting)}")


class ColumnScore:
    """One column's figures, accumulated batch by batch (evaluate keeps no log-probabilities): the metrics,
    predictions/<name>_<lexicon>.tsv written as batches come (unreadable images last), and the ``keep_errors``
    most confident errors (key, label, reading, confidence) with the network's input of each (the error sheet)."""

    def __init__(self, name: str, lexicon: str, decoder: Decoder, per_image, case_sensitive: bool, out_dir: Path,
                 keep_errors: int = 0, protocol: str = "word"):
        self.name, self.lexicon, self.decoder, self.per_image = name, lexicon, decoder, per_image
        self.case_sensitive, self.keep_errors, self.protocol = case_sensitive, keep_errors, protocol
        self.metrics = TextMetrics(normalize=True, case_sensitive=case_sensitive, protocol=protocol)
        self.read, self.confidence_sum, self.decode_s = 0, 0.0, 0.0
        self.errors: list[tuple[str, str, str, float]] = []
        self.error_images: dict[str, torch.Tensor] = {}
        (out_dir / "predictions").mkdir(parents=True, exist_ok=True)
        self.file = open(out_dir / "predictions" / f"{name}_{lexicon}.tsv", "w", encoding="utf-8")  # noqa: SIM115
        self.file.write("key\tlabel\tprediction\tconfidence\tcorrect\n")

    def add(self, r: Recognized, images: Mapping[str, torch.Tensor]) -> None:
        """Decode one batch; ``images``: the network inputs of its chunk, by key (for the errors kept)."""
        start = time.perf_counter()
        lexicons = self.per_image.lists_for(r.keys) if self.per_image is not None else None
        predictions = self.decoder.decode(r.log_probs, r.lengths, lexicons=lexicons)
        self.metrics.update([p.text for p in predictions], r.labels)
        rows, errors = [], []
        for key, label, p in zip(r.keys, r.labels, predictions):
            correct = (compare_form(p.text, self.protocol, self.case_sensitive)
                       == compare_form(label, self.protocol, self.case_sensitive))
            rows.append(f"{key}\t{label}\t{p.text}\t{p.confidence:.4f}\t{int(correct)}\n")
            self.confidence_sum += p.confidence
            if not correct and self.keep_errors:
                errors.append((key, label, p.text, p.confidence))
        self.read += len(predictions)
        self.decode_s += time.perf_counter() - start
        self.file.writelines(rows)
        if errors:  # the most confident first; among equals, the first seen
            self.errors = heapq.nlargest(self.keep_errors, self.errors + errors, key=lambda e: e[3])
            self.error_images = {e[0]: self.error_images[e[0]] if e[0] in self.error_images else images[e[0]]
                                 for e in self.errors}

    def finish(self, unreadable: list[tuple[str, str, str]], timing: Timing) -> Column:
        """The column, counting ``unreadable`` images as errors (nothing could be read)."""
        if unreadable:
            self.metrics.update([""] * len(unreadable), [label for _, label, _ in unreadable])
            self.file.writelines(f"{key}\t{label}\t\t0.0000\t0\t# unreadable: {reason}\n"
                                 for key, label, reason in unreadable)
        self.file.close()
        values = {k: float(v) for k, v in self.metrics.compute().items()}
        return Column(self.name, self.lexicon, int(self.metrics.total), len(unreadable), values["acc"], values["ned"],
                      values["cer"], self.confidence_sum / max(self.read, 1), timing.images_per_s,
                      1000 * self.decode_s / max(self.read, 1))


def error_sheet(errors: list[tuple[str, str, str, float]], images: dict[str, torch.Tensor], path: Path,
                limit: int = 60, font: Path | None = None, lines: bool = False, show=to_pixels) -> None:
    """A PNG of the most confident errors first: what the network saw (its input, height-normalized), the label,
    the reading and its confidence — the first thing to look at, and what tells the renderer work what fails.
    ``lines``: text lines, each image whole (wrapped into rows) above its label and reading (``_line_sheet``).
    ``show``: network input → RGB pixels (``Preprocess.to_pixels``: a BGR model's input shown in RGB)."""
    from PIL import Image, ImageDraw, ImageFont

    shown = sorted(errors, key=lambda e: -e[3])[:limit]
    if lines:
        _line_sheet(shown, images, path, font, show)
        return
    scale, cell_w, text_w = 2, 240, 260
    height = max((images[e[0]].shape[-2] for e in shown), default=0)  # the model's input height
    row_h = max(height * scale + 8, 48)  # room for the two text lines
    sheet = Image.new("RGB", (cell_w * scale // 2 * 2 + text_w, max(1, len(shown)) * row_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    face = ImageFont.truetype(str(font), 16) if font is not None and font.is_file() else ImageFont.load_default()
    for i, (key, label, reading, confidence) in enumerate(shown):
        image = _rgb(show(images[key]))
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
        sheet.paste(image.crop((0, 0, min(image.width, cell_w * scale // 2 * 2), image.height)), (0, i * row_h))
        x = cell_w * scale // 2 * 2 + 8
        draw.text((x, i * row_h + 4), f"{label}  →  {reading or '∅'}", fill=(0, 0, 0), font=face)
        draw.text((x, i * row_h + 26), f"{confidence:.2f}  {key[-28:]}", fill=(110, 110, 110), font=face)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


def _rgb(pixels):
    """H×W×1 or H×W×3 uint8 → an RGB PIL image."""
    from PIL import Image

    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).convert("RGB")


def _line_sheet(shown: list[tuple[str, str, str, float]], images: dict[str, torch.Tensor], path: Path,
                font: Path | None, show=to_pixels, width: int = 1200) -> None:
    """The error sheet of text lines: each line's network input at its own scale, cut into rows ``width`` px wide
    when longer (a line is never squeezed nor cropped), then the label and the reading one above the other in a
    monospaced face, so a missing space or a wrong character stands under its counterpart, and the position of
    the first difference marked with ``^``."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(str(font), 14) if font is not None and font.is_file() else ImageFont.load_default()
    text_h, blocks = 18, []
    for key, label, reading, confidence in shown:
        pixels = _rgb(show(images[key]))
        rows = [pixels.crop((x, 0, min(x + width, pixels.width), pixels.height))
                for x in range(0, pixels.width, width)]
        first = next((i for i, (a, b) in enumerate(zip(label, reading)) if a != b), min(len(label), len(reading)))
        texts = [f"label {label}", f"read  {reading or '∅'}", f"      {' ' * first}^  {confidence:.2f}  {key[-40:]}"]
        block = Image.new("RGB", (width + 16, sum(r.height + 2 for r in rows) + len(texts) * text_h + 10),
                          (255, 255, 255))
        draw, y = ImageDraw.Draw(block), 4
        for row in rows:
            block.paste(row, (8, y))
            y += row.height + 2
        for i, text in enumerate(texts):
            draw.text((8, y + i * text_h), text, fill=(0, 0, 0) if i < 2 else (110, 110, 110), font=face)
        blocks.append(block)
    sheet = Image.new("RGB", (width + 16, max(1, sum(b.height for b in blocks))), (255, 255, 255))
    y = 0
    for block in blocks:
        sheet.paste(block, (0, y))
        ImageDraw.Draw(sheet).line((0, y + block.height - 1, width + 16, y + block.height - 1), fill=(200, 200, 200))
        y += block.height
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


def markdown(columns: list[Column], combined: float | None, ckpt: str, protocol: str = PROTOCOLS[False],
             unit: str = "Word") -> str:
    head = " | ".join(f"{c.benchmark} {c.lexicon if c.lexicon != 'none' else ''}".strip() for c in columns)
    acc = " | ".join(f"{100 * c.accuracy:.1f}" for c in columns)
    lines = [f"{unit} accuracy (%) of `{ckpt}` — {protocol}; lexicon column = lexicon size/name",
             "", f"| model | {head} | combined |", "|---" * (len(columns) + 2) + "|",
             f"| crnn_lit | {acc} | {'' if combined is None else f'{100 * combined:.1f}'} |", "",
             "| benchmark | lexicon | images | unreadable | accuracy | 1-NED | CER | mean conf. | images/s | decode ms/img |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {c.benchmark} | {c.lexicon} | {c.images} | {c.unreadable} | {100 * c.accuracy:.2f} | {c.ned:.4f} | "
              f"{c.cer:.4f} | {c.mean_confidence:.3f} | {c.images_per_s:.0f} | {c.decode_ms_per_image:.2f} |"
              for c in columns]
    return "\n".join(lines) + "\n"


def _emptied_lexicons(cfg: DictConfig) -> None:
    """Honour ``benchmarks.<key>.lexicons={}`` from the command line: Hydra merges a dict override into the dict
    already there, so an empty one would silently change nothing; it means "no lexicon columns" (= ``null``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not HydraConfig.initialized():
        return
    for override in OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task)):
        parts = override.key_or_group.split(".")
        if (len(parts) == 3 and parts[0] == "benchmarks" and parts[2] == "lexicons" and parts[1] in cfg.benchmarks
                and not override.is_delete() and override.value() == {}):
            cfg.benchmarks[parts[1]].lexicons = None


def _selected(cfg: DictConfig) -> dict[str, DictConfig]:
    """The benchmarks ``only`` picks (by default all those scored under ``protocol``: the word benchmarks, or with
    ``protocol=line`` the line ones), their lexicon settings cut to ``lexicons`` when it is set; a
    name that is neither a benchmark key nor a lexicon setting is an error naming the known ones. ``inputs``: your
    own test sets instead (``own_test_sets``)."""
    if cfg.get("inputs"):
        return own_test_sets(cfg.inputs, cfg.protocol)
    _emptied_lexicons(cfg)
    known = list(cfg.benchmarks)
    _protocol(OmegaConf.create({}), cfg)  # a bad protocol fails before anything is read
    # by default the benchmarks written for this protocol (one without `protocol` is a word benchmark)
    only = [k for k in known if cfg.benchmarks[k].get("protocol", "word") == cfg.protocol] if cfg.only is None else \
        [str(k) for k in ([cfg.only] if isinstance(cfg.only, str) else cfg.only)]
    unknown = [k for k in only if k not in cfg.benchmarks]
    if unknown or not only:
        raise ConfigError(f"only={only}: {'unknown benchmark ' + ', '.join(unknown) if unknown else 'no benchmark'}; "
                          f"known: {', '.join(known)} (e.g. only=[svt,iiit5k])")
    selected = {key: cfg.benchmarks[key] for key in only}
    if cfg.get("lexicons") is not None:
        wanted = [str(name) for name in ([cfg.lexicons] if isinstance(cfg.lexicons, str) else cfg.lexicons)]
        names = sorted({str(n) for bench in selected.values() for n in (bench.get("lexicons") or {})})
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise ConfigError(f"lexicons={wanted}: unknown lexicon setting {', '.join(unknown)}; those of the "
                              f"selected benchmarks: {', '.join(names) or 'none'} (lexicons=[] keeps none)")
        for bench in selected.values():
            if bench.get("lexicons"):
                bench.lexicons = {n: v for n, v in bench.lexicons.items() if str(n) in wanted} or None
    return selected


def _protocol(bench: DictConfig, cfg: DictConfig) -> str:
    """A benchmark's protocol: its own (``protocol: line`` in conf/benchmark/sroie_val.yaml), else ``protocol``."""
    protocol = bench.get("protocol") or cfg.protocol
    if protocol not in ("word", "line"):
        raise ConfigError(f"protocol={protocol}: must be word (the scene-text benchmarks') or line (text lines)")
    return protocol


def _warn_case(cfg: DictConfig, charset: Charset) -> None:
    """A case-sensitive evaluation of a model that cannot read capitals: every such label is an error."""
    if cfg.case_sensitive and not any(c.isupper() for c in charset.chars):
        log.warning("case_sensitive=true, but the model has no capital letters (charset %s): every label with a "
                    "capital counts as an error. The standard protocol is case_sensitive=false", charset.name or
                    charset.chars)


def _per_image_coverage(name: str, lexicon: Lexicon, keys: list[str]) -> str | None:
    """Why a per-image lexicon column would be meaningless (no image has a list: it would equal greedy), or None;
    warns when only some images lack one (those read lexicon-free)."""
    without = sum(not words for words in lexicon.lists_for(keys))
    if keys and without == len(keys):
        return f"no image has a word list in {lexicon.source} (keys must match the benchmark's, e.g. {keys[0]})"
    if without:
        log.warning("%s: %d of %d images have no word list in %s; they are read lexicon-free", name, without,
                    len(keys), lexicon.source)
    return None


def evaluate(cfg: DictConfig) -> dict:
    check_required(cfg)
    selected = _selected(cfg)
    found = {key: find_benchmark(bench) for key, bench in selected.items()}
    if all(path is None for path, _ in found.values()):  # before anything is loaded
        root = Path(str(cfg.benchmark_root))
        raise ConfigError(f"no benchmark found ({', '.join(selected[k].name for k in found)}) under benchmark_root="
                          f"{root}{'' if root.is_dir() else ', which does not exist'}: set benchmark_root=<folder "
                          f"holding iiit5k/, svt/, …> or {SHARED_DATA_ENV}=<shared data folder holding benchmarks/>")
    ckpt = resolve_ckpt(cfg)
    # the headline decoder reads; the columns' decoders decode the same frame posteriors (Recognizer.recognize)
    reader = Recognizer.from_checkpoint(ckpt, instantiate(cfg.decoder), batch_size=cfg.batch_size,
                                        chunk_size=cfg.chunk_size, turn_tall=cfg.turn_tall,
                                        window=cfg.get("window"), threads=cfg.threads, device=cfg.device)
    charset, preprocess, prepare = reader.charset, reader.preprocess, reader.prepare
    _warn_case(cfg, charset)
    out_dir = Path(cfg.paths.output_dir)
    columns: list[Column] = []
    skipped: dict[str, str] = {}
    turned: dict[str, int] = {}
    protocols: dict[str, str] = {}  # benchmark name → word or line
    lexicon_decoder = cfg.get("lexicon_decoder")
    with_lexicons = lexicon_decoder is not None and "_target_" in lexicon_decoder  # ~decoder@lexicon_decoder: none
    for key, bench in selected.items():
        path, fmt = found[key]
        if path is None:
            skipped[bench.name] = fmt
            log.warning("skipping %s: %s", bench.name, skipped[bench.name])
            continue
        source = open_source(path, fmt, split="test")
        turned_before = getattr(prepare, "turned", 0)
        _warn_sizes(bench.name, source, preprocess, reader.backend.frame_width, cfg.turn_tall)
        settings = [("none", reader.decoder, None)]  # the headline: the reader's (decoder=model resolved)
        for key, column in EXTRA_COLUMNS.items():  # lexicon-free too, unless it is the headline decoder itself
            if cfg.get(key) and cfg[key] != cfg.decoder:
                settings.append((column, instantiate(cfg[key])(charset), None))
        lexicons = bench.get("lexicons") or {}  # null, {} or deleted (~benchmarks.<key>.lexicons): none
        for name, setting in lexicons.items() if with_lexicons else ():
            missing = _lexicon_missing(setting)
            if missing:
                skipped[f"{bench.name} {name}"] = missing
                log.warning("skipping the %s %s column: %s", bench.name, name, missing)
                continue
            lexicon_columns = _lexicon_columns(name, setting, charset, cfg)
            per_image = lexicon_columns[0][2]
            uncovered = None if per_image is None else _per_image_coverage(
                f"{bench.name} {name}", per_image, [source.key(i) for i in range(len(source))])
            if uncovered:
                skipped[f"{bench.name} {name}"] = uncovered
                log.warning("skipping the %s %s column: %s", bench.name, name, uncovered)
                continue
            settings += lexicon_columns
        if not with_lexicons:
            skipped.update({f"{bench.name} {name}": "lexicon columns off (no lexicon_decoder)" for name in lexicons})
        protocol = _protocol(bench, cfg)
        protocols[bench.name] = protocol
        scores = [ColumnScore(bench.name, str(lexicon), decoder, per_image, cfg.case_sensitive, out_dir,
                              keep_errors=cfg.error_sheet if lexicon == "none" else 0, protocol=protocol)
                  for lexicon, decoder, per_image in settings]
        timing, unreadable = Timing(), []
        for indices in chunked(range(len(source)), cfg.chunk_size):  # a chunk's images in memory, never all
            images, keys, labels, bad = reader.prepare_source(source, indices)
            unreadable += bad
            chunk = dict(zip(keys, images, strict=True))
            for r in reader.recognize(images, keys, labels, timing):
                for score in scores:
                    score.add(r, chunk)
            del images, chunk  # freed before the next chunk is read, not after
        if cfg.turn_tall:
            turned[bench.name] = prepare.turned - turned_before
            log.info("%s: %d of %d crops read turned (turn_tall=%s)", bench.name, turned[bench.name],
                     len(source) - len(unreadable), cfg.turn_tall)
        for score in scores:
            column = score.finish(unreadable, timing)
            columns.append(column)
            if score.keep_errors:
                error_sheet(score.errors, score.error_images, out_dir / "errors" / f"{bench.name}.png",
                            limit=cfg.error_sheet, font=Path(cfg.paths.data_dir) / "fonts/dejavu/DejaVuSansMono.ttf",
                            lines=protocol == "line", show=preprocess.to_pixels)
            log.info("%s %s: accuracy %.2f %% (%d images)", bench.name, score.lexicon, 100 * column.accuracy,
                     column.images)
    if any(c.lexicon.endswith(" open-ratio") for c in columns):
        log.warning("open lexicon columns without a language model (~decoder@open_lm or lexicon_decoder.lm=null): "
                    "the plain ratio test p(w|y) >= %g·p(l'|y), named '<lexicon> open-ratio'; the default open_ratio "
                    "(10) is calibrated for the fused test, the plain ratio's was 0.001 (README)",
                    cfg.lexicon_decoder.open_ratio)
    free = [c for c in columns if c.lexicon == "none"]
    combined = sum(c.accuracy * c.images for c in free) / sum(c.images for c in free) if free else None
    line_only = bool(protocols) and set(protocols.values()) == {"line"}
    described = LINE_PROTOCOL if line_only else PROTOCOLS[bool(cfg.case_sensitive)]
    lined = [name for name, p in protocols.items() if p == "line"]
    if lined and not line_only:
        described += f"; {', '.join(lined)}: {LINE_PROTOCOL}"
    table = markdown(columns, combined, ckpt, described, "Line" if line_only else "Word")
    (out_dir / "results.md").write_text(table, encoding="utf-8")
    result = {"ckpt": ckpt, "protocol": described, "combined_accuracy_lexicon_free": combined,
              "columns": [asdict(c) for c in columns], "skipped": skipped,
              "turn_tall": {"min_aspect": cfg.turn_tall, "turned": turned} if cfg.turn_tall else None}
    (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table)
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    print(f"written: {out_dir / 'results.md'}, {out_dir / 'results.json'}, {out_dir / 'predictions'}/")
    return result


def _warn_sizes(name: str, source, preprocess: Preprocess, frame: float, turn_tall: float | None) -> None:
    """Warn about crops narrower than one CTC frame (``inference.too_narrow``): read as given, as the protocol
    asks, but nothing in them can be read (``predict`` returns them unread); and about crops wider than the model's
    ``max_width``, read squeezed (``inference.squeezed``) unless ``window`` is set."""
    wide = [source.key(i) for i in range(len(source)) if squeezed(*source.size(i), preprocess)]
    if wide:
        log.warning("%s: %s", name, squeeze_warning(len(wide), len(source), preprocess, wide))
    narrow = [source.key(i) for i in range(len(source)) if too_narrow(*source.size(i), preprocess, frame, turn_tall)]
    if narrow:
        log.warning("%s: %d crops are narrower than one CTC frame at the model's height (%s): read as given, but no "
                    "character fits in them; vertical text reads with turn_tall=1.5", name, len(narrow),
                    ", ".join(narrow[:5]) + (", …" if len(narrow) > 5 else ""))


@task("evaluate")
def main(cfg: DictConfig) -> None:
    bound_kernel_cache()
    evaluate(cfg)


if __name__ == "__main__":
    main()
