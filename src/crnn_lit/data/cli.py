"""``python -m crnn_lit.data``: convert datasets to LMDB and inspect any dataset.

    python -m crnn_lit.data convert --format folder --input ../shared/data/real_train/svt --output svt.lmdb
    python -m crnn_lit.data convert --format synth90k --input /data/90kDICT32px --split train --output mj.lmdb
    python -m crnn_lit.data inspect ../shared/data/benchmarks/iiit5k --charset lowercase
    python -m crnn_lit.data inspect /data/my_crops/gt.txt     # a labels file of any name: its folder's images

``convert`` validates every image by decoding it, stores the original encoded bytes (DTRB/parseq layout plus
our ``size-%09d`` records) and is resumable: run the same command again after an interruption and it continues
after the last commit. ``inspect`` prints counts, label-length and width histograms, charset coverage, a few kept
labels before → after the training label policy, and the samples it would filter, with reasons.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from crnn_lit.charset import Charset
from crnn_lit.data.dataset import LabelPolicy, Rejected
from crnn_lit.data.sample import BadSample, Sample
from crnn_lit.data.sources import detect_format, open_source
from crnn_lit.data.sources.image_io import decode_image
from crnn_lit.preprocess import Preprocess

log = logging.getLogger("crnn_lit.data")

def load_charset(name: str) -> Charset:
    """A charset by ``conf/charset`` option (``lowercase``, ``case_sensitive``, ``printable``) or charset-file path."""
    if Path(name).is_file():
        return Charset.from_file(name)
    from hydra.errors import MissingConfigException
    from hydra.utils import instantiate

    from crnn_lit.config import compose_config

    try:
        return instantiate(compose_config([f"charset={name}"]).charset)
    except MissingConfigException:
        raise ValueError(f"--charset {name}: neither a charset file nor a conf/charset option") from None


# --- convert ------------------------------------------------------------------------------------------------
_WORKER_SOURCE = None


def _init_worker(source) -> None:
    global _WORKER_SOURCE
    _WORKER_SOURCE = source


def _check(index: int, source=None) -> tuple:
    """(encoded bytes, label, (w, h)) of a usable sample, or (None, reason, detail)."""
    source = source if source is not None else _WORKER_SOURCE
    try:
        data, label, key = source.raw(index)
        if not label.strip():
            return None, "empty_label", key
        image = decode_image(data, key)  # validates: a sample we store must decode
    except BadSample as err:
        return None, err.reason, str(err)
    return data, label, (image.shape[1], image.shape[0])


def _checked(source, start: int, stop: int, workers: int) -> Iterator[tuple]:
    if workers <= 1 or stop - start < 4 * workers:
        for i in range(start, stop):
            yield _check(i, source)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    chunk = max(1, min(64, (stop - start) // (4 * workers)))
    with ctx.Pool(workers, initializer=_init_worker, initargs=(source,)) as pool:
        yield from pool.imap(_check, range(start, stop), chunksize=chunk)  # in order: resumable by position


def convert(source, output: str | Path, source_id: str, *, workers: int = 1, commit_every: int = 1000,
            map_size: int = 1 << 40, overwrite: bool = False, progress: bool = False) -> dict:
    """Write ``source`` (anything with ``raw(i)``) to the LMDB archive ``output``; returns the report.

    Progress (input position, skip counts, ``source_id``) is committed with every batch of records, so calling
    again with the same ``source_id`` continues an interrupted conversion; a different ``source_id`` is refused
    unless ``overwrite``. Samples whose image does not decode or whose label is empty are skipped and counted.
    """
    from crnn_lit.data.sources.lmdb import LmdbWriter

    output = Path(output)
    if overwrite and output.exists():
        for name in ("data.mdb", "lock.mdb"):
            (output / name).unlink(missing_ok=True)
    with LmdbWriter(output, map_size=map_size, commit_every=commit_every) as writer:
        meta = writer.meta
        if meta and meta.get("source") != source_id:
            raise ValueError(f"{output} already holds a conversion of {meta.get('source')!r}; "
                             "use --overwrite or another --output")
        if not meta and writer.count:
            raise ValueError(f"{output} is an existing archive not written by this converter; choose another --output")
        position = int(meta.get("position", 0))
        skipped: Counter = Counter(meta.get("skipped", {}))
        examples: dict = meta.get("examples", {})
        total = len(source)
        resumed = position > 0 and not meta.get("complete")
        if meta.get("complete"):
            log.info("%s already holds the complete conversion of %s", output, source_id)
        if resumed:
            log.info("resuming %s at input %d of %d (%d samples written)", output, position, total, writer.count)
        started, done_before = time.perf_counter(), position
        for result in _checked(source, position, total, workers):
            data, label, extra = result
            if data is None:
                skipped[label] += 1
                shown = examples.setdefault(label, [])
                if len(shown) < 5:
                    shown.append(extra)
            else:
                writer.add(data, label, extra)
            position += 1
            if writer.pending() >= commit_every:
                writer.commit(_meta(source_id, position, total, skipped, examples))
                if progress:
                    rate = (position - done_before) / max(time.perf_counter() - started, 1e-9)
                    print(f"\r{position}/{total} read, {writer.count} written, {sum(skipped.values())} skipped, "
                          f"{rate:.0f}/s", end="", file=sys.stderr, flush=True)
        writer.commit(_meta(source_id, position, total, skipped, examples))
        if progress:
            print(file=sys.stderr)
        return {"output": str(output), "source": source_id, "read": position, "written": writer.count,
                "skipped": dict(skipped), "examples": examples, "resumed": resumed}


def _meta(source_id: str, position: int, total: int, skipped: Counter, examples: dict) -> dict:
    return {"source": source_id, "position": position, "total": total, "complete": position >= total,
            "skipped": dict(skipped), "examples": examples}


# --- inspect ------------------------------------------------------------------------------------------------
def _histogram(values: np.ndarray, edges: list[int], unit: str = "") -> list[str]:
    """Text histogram; ``edges`` are trimmed to the range the values occupy."""
    lo, hi = int(values.min()), int(values.max())
    edges = [e for k, e in enumerate(edges) if (k + 1 < len(edges) and edges[k + 1] > lo or k + 1 == len(edges))
             and (k == 0 or edges[k - 1] <= hi)]
    counts, _ = np.histogram(values, bins=edges)
    peak = max(int(counts.max()), 1) if len(counts) else 1
    lines = []
    for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True):
        label = f"{lo}" if hi - lo == 1 else f"{lo}–{hi - 1}"
        lines.append(f"  {label:>9}{unit} {'█' * round(30 * c / peak):<30} {c}")
    return lines


def inspect(source, charset: Charset, output_length: Callable[[int], int], preprocess: Preprocess, *,
            decode: bool = False, show: int = 5) -> dict:
    """Statistics of ``source`` under the training label policy; returns them (and ``text``, the report).
    ``output_length`` is the model's width → frame count (labels needing more frames are filtered)."""
    resize = preprocess.resize
    n = len(source)
    lengths, widths = np.full(n, -1, np.int64), np.zeros(n, np.int64)  # length -1: no usable label
    seen: Counter = Counter()
    outside: Counter = Counter()
    filtered: Counter = Counter()
    examples: dict[str, list[str]] = {}

    policy = LabelPolicy(charset, output_length)  # training's rules (PreparedDataset applies the same)
    reasons: list[str | None] = [None] * n  # per sample: why training would skip it (None: used)
    changed: Counter = Counter()  # kept labels the policy changes: "removed" (characters taken out) or "folded"
    changes: dict[str, list[str]] = {}  # … and the first few of each, before → after

    def reject(i: int, rejection: Rejected) -> None:
        reasons[i] = rejection.reason
        filtered[rejection.reason] += 1
        if len(examples.setdefault(rejection.reason, [])) < show:
            examples[rejection.reason].append(f"{rejection.key} {rejection.detail}")

    for i in range(n):
        try:
            raw_label = source.label(i)
            w, h = source.size(i)
            sample = source[i] if decode else Sample(None, raw_label, source.key(i))
        except BadSample as err:
            reject(i, Rejected.of(err))
            continue
        text = charset.canonical(raw_label)
        seen.update(c for c in text if c in charset)
        outside.update(c for c in text if c not in charset)
        label = charset.normalize(raw_label)
        lengths[i] = len(label) if label else -1
        if sample.image is not None:
            h, w = sample.image.shape[:2]
        widths[i] = resize.width_for(w, h)
        decision = policy.check(sample, int(widths[i]))
        if isinstance(decision, Rejected):
            reject(i, decision)
        elif decision != raw_label:
            kind = "removed" if decision != text else "folded"
            changed[kind] += 1
            shown, example = changes.setdefault(kind, []), f"{raw_label!r} → {decision!r}"
            if len(shown) < show and example not in shown:
                shown.append(example)

    usable = n - sum(filtered.values())
    lines = [(f"{n} samples; {usable} usable under charset {charset.name or 'custom'} "
             f"({len(charset)} chars, case fold {charset.fold or 'none'}, oov {charset.oov})")]
    skipped = getattr(source, "skipped", None)
    if skipped:
        lines.append(f"skipped while reading the index: {skipped.summary()}")
    if getattr(source, "lexicon_mismatches", 0):
        lines.append(f"file-name words that differ from their lexicon entry: {source.lexicon_mismatches}")
    if not decode:
        lines.append("(images not decoded: run with --decode to find unreadable ones)")
    labelled = lengths[lengths >= 0]
    if len(labelled):
        lmax = int(labelled.max())
        lines += ["", "label length (normalized labels within the charset):"]
        lines += _histogram(labelled, list(range(min(lmax, 25) + 2)) + ([lmax + 1] if lmax > 25 else []))
    if n:
        step = 25
        top = resize.max_width or max(int(widths.max()), resize.min_width)  # max_width null: lines at their width
        lines += ["", f"width at height {resize.height} (px, clamped to [{resize.min_width}, {resize.max_width}]):"]
        lines += _histogram(widths, list(range(0, top + step + 1, step)), "")
        lines.append(f"  mean {widths.mean():.1f}, median {np.median(widths):.0f}, p95 {np.percentile(widths, 95):.0f}")
    coverage = sum(1 for c in charset.chars if seen[c])
    lines += ["", f"charset coverage: {coverage}/{len(charset)} characters occur"]
    never = "".join(c for c in charset.chars if not seen[c])
    if never:
        lines.append(f"  never seen: {never}")
    if outside:
        shown = ", ".join(f"{c!r}×{k}" for c, k in outside.most_common(20))
        lines.append(f"  outside the charset: {sum(outside.values())} characters ({len(outside)} distinct): {shown}")
    if changed:
        lines += ["", "kept labels the policy changes (before → after, as training learns them):"]
        for kind, what in (("removed", f"characters outside the charset removed (oov {charset.oov})"),
                           ("folded", "case folded or Unicode-normalized only")):
            if changed[kind]:
                lines.append(f"  {what}: {changed[kind]}, e.g. {', '.join(changes[kind])}")
    lines += ["", "would be filtered:" if filtered else "would be filtered: none"]
    for reason, count in filtered.most_common():
        lines.append(f"  {reason}: {count}")
        lines += [f"    {e}" for e in examples[reason]]
    return {"count": n, "usable": usable, "filtered": dict(filtered), "examples": examples, "reasons": reasons,
            "lengths": lengths, "widths": widths, "outside": dict(outside), "coverage": coverage,
            "changed": dict(changed), "changes": changes, "text": "\n".join(lines)}


# --- entry point ----------------------------------------------------------------------------------------------
def backbone_output_length(name: str, preprocess: Preprocess) -> Callable[[int], int]:
    """The frame count T(width) of the backbone ``conf/backbone/<name>.yaml`` at the input's height (asked of the
    model)."""
    from hydra.utils import instantiate

    from crnn_lit.config import compose_config

    overrides = [f"backbone={name}", f"preprocess.height={preprocess.height}"]
    return instantiate(compose_config(overrides).backbone).output_length


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m crnn_lit.data", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="write a dataset as an LMDB archive (resumable)")
    c.add_argument("--format", choices=("folder", "synth90k", "lmdb", "auto"), default="auto")
    c.add_argument("--input", required=True, help="folder (with labels.tsv, gt.txt or labels.txt), a labels file "
                   "(path<TAB>label or path label lines), Synth90k root, or LMDB (tree)")
    c.add_argument("--output", required=True, help="LMDB folder to create or continue")
    c.add_argument("--split", default="train", help="Synth90k annotation split: train, val or test")
    c.add_argument("--limit", type=int, default=None, help="convert only the first N input samples")
    c.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="decoding processes")
    c.add_argument("--commit-every", type=int, default=1000)
    c.add_argument("--map-size-gb", type=float, default=1024, help="address space reserved (not disk used)")
    c.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    i = sub.add_parser("inspect", help="counts, histograms, charset coverage, what would be filtered")
    i.add_argument("path", help="folder (with labels.tsv, gt.txt or labels.txt), a labels file (path<TAB>label "
                   "or path label lines), Synth90k root, or LMDB (tree)")
    i.add_argument("--format", choices=("folder", "synth90k", "lmdb", "auto"), default="auto")
    i.add_argument("--split", default="train")
    i.add_argument("--charset", default="lowercase", help="lowercase | case_sensitive | printable | file path")
    i.add_argument("--limit", type=int, default=None)
    i.add_argument("--decode", action="store_true", help="decode every image (finds unreadable ones; slower)")
    i.add_argument("--preprocess", default="default", help="conf/preprocess option: the model's input spec")
    i.add_argument("--height", type=int, default=None, help="override the input spec's height")
    i.add_argument("--show", type=int, default=5, help="examples per filter reason")
    i.add_argument("--backbone", default="vgg_light", help="conf/backbone option whose frame count T(width) "
                   "decides which labels are too long")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    try:
        fmt = detect_format(args.input if args.command == "convert" else args.path, args.split) \
            if args.format == "auto" else args.format
        if args.command == "convert":
            source = open_source(args.input, fmt, split=args.split, limit=args.limit)
            source_id = f"{fmt}:{Path(args.input).resolve()}:{args.split if fmt == 'synth90k' else ''}:{args.limit}"
            report = convert(source, args.output, source_id, workers=args.workers, commit_every=args.commit_every,
                             map_size=int(args.map_size_gb * (1 << 30)), overwrite=args.overwrite,
                             progress=sys.stderr.isatty())
            skipped = ", ".join(f"{k}={v}" for k, v in sorted(report["skipped"].items())) or "none"
            index_skips = getattr(source, "skipped", None)
            print(f"{report['output']}: {report['written']} samples written from {report['read']} read"
                  f"{' (resumed)' if report['resumed'] else ''}; skipped: {skipped}")
            if index_skips:
                print(f"skipped while reading the input index: {index_skips.summary()}")
            for reason, shown in sorted(report["examples"].items()):
                print(f"  {reason}: " + "; ".join(shown[:3]))
        else:
            source = open_source(args.path, fmt, split=args.split, limit=args.limit)
            spec = Preprocess.from_conf(args.preprocess, **({"height": args.height} if args.height else {}))
            result = inspect(source, load_charset(args.charset), backbone_output_length(args.backbone, spec), spec,
                             decode=args.decode, show=args.show)
            print(f"{args.path} ({fmt})")
            print(result["text"])
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
