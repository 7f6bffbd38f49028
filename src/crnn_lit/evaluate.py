"""Evaluate a checkpoint on the standard benchmarks: ``python -m crnn_lit.evaluate ckpt=… [benchmark_root=…]``.

Writes to the run directory: ``results.md`` (the paper's Table-2 layout and a detail table), ``results.json``
and ``predictions/<benchmark>_<lexicon>.tsv`` (every image: key, label, prediction, confidence, correct).
Every benchmark image counts: an unreadable image is an error (empty prediction), never silently dropped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from crnn_lit.benchmarks import (
    find_benchmark,
    lexicon_columns,
    lexicon_missing,
    per_image_coverage,
    protocol_of,
    select_benchmarks,
)
from crnn_lit.charset import Charset
from crnn_lit.config import SHARED_DATA_ENV, ConfigError, check_required, resolve_ckpt
from crnn_lit.data.sources import open_source
from crnn_lit.error_sheet import error_sheet
from crnn_lit.preprocess import Preprocess
from crnn_lit.reading.inference import (
    Timing,
    bound_kernel_cache,
    chunked,
    squeeze_warning,
    squeezed,
    too_narrow,
)
from crnn_lit.reading.recognizer import Recognizer
from crnn_lit.scoring import LINE_PROTOCOL, PROTOCOLS, Column, ColumnScore, markdown
from crnn_lit.task import task

log = logging.getLogger("crnn_lit.evaluate")
# the lexicon-free columns beside the headline one (`decoder`), by their config key (conf/evaluate.yaml)
EXTRA_COLUMNS = {"lm_decoder": "beam+LM", "greedy_decoder": "greedy"}


def _warn_case(cfg: DictConfig, charset: Charset) -> None:
    """A case-sensitive evaluation of a model that cannot read capitals: every such label is an error."""
    if cfg.case_sensitive and not any(c.isupper() for c in charset.chars):
        log.warning("case_sensitive=true, but the model has no capital letters (charset %s): every label with a "
                    "capital counts as an error. The standard protocol is case_sensitive=false", charset.name or
                    charset.chars)


def evaluate(cfg: DictConfig) -> dict:
    check_required(cfg)
    selected = select_benchmarks(cfg)
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
            missing = lexicon_missing(setting)
            if missing:
                skipped[f"{bench.name} {name}"] = missing
                log.warning("skipping the %s %s column: %s", bench.name, name, missing)
                continue
            built = lexicon_columns(name, setting, charset, cfg)
            per_image = built[0][2]
            uncovered = None if per_image is None else per_image_coverage(
                f"{bench.name} {name}", per_image, [source.key(i) for i in range(len(source))])
            if uncovered:
                skipped[f"{bench.name} {name}"] = uncovered
                log.warning("skipping the %s %s column: %s", bench.name, name, uncovered)
                continue
            settings += built
        if not with_lexicons:
            skipped.update({f"{bench.name} {name}": "lexicon columns off (no lexicon_decoder)" for name in lexicons})
        protocol = protocol_of(bench, cfg)
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
        log.warning("open lexicon columns without a language model (lexicon_decoder.lm=null): "
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
