"""What an evaluate config selects: the benchmarks (or your own test sets) found on disk, each one's protocol, and
its lexicon columns with their decoders — every mistake in them a ``ConfigError`` before anything is read."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from crnn_lit.charset import Charset
from crnn_lit.data.sources import detect_format
from crnn_lit.paths import ConfigError
from crnn_lit.transcription import LexiconDecoder
from crnn_lit.transcription.lexicon import Lexicon

log = logging.getLogger("crnn_lit.evaluate")  # evaluate's warnings, under its name


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


def lexicon_missing(setting: DictConfig) -> str | None:
    """Why a lexicon setting cannot be used (its file is not on disk, or empty), or None."""
    path = setting.get("file") or setting.get("per_image")
    if path is None:
        return None
    if not Path(path).is_file():
        return f"lexicon file not found: {path}"
    return f"lexicon file is empty: {path}" if Path(path).stat().st_size == 0 else None


def lexicon_columns(name: str, setting: DictConfig, charset: Charset, cfg: DictConfig) -> list[tuple]:
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


def select_benchmarks(cfg: DictConfig) -> dict[str, DictConfig]:
    """The benchmarks ``only`` picks (by default all those scored under ``protocol``: the word benchmarks, or with
    ``protocol=line`` the line ones), their lexicon settings cut to ``lexicons`` when it is set; a
    name that is neither a benchmark key nor a lexicon setting is an error naming the known ones. ``inputs``: your
    own test sets instead (``own_test_sets``)."""
    if cfg.get("inputs"):
        return own_test_sets(cfg.inputs, cfg.protocol)
    _emptied_lexicons(cfg)
    known = list(cfg.benchmarks)
    protocol_of(OmegaConf.create({}), cfg)  # a bad protocol fails before anything is read
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


def protocol_of(bench: DictConfig, cfg: DictConfig) -> str:
    """A benchmark's protocol: its own (``protocol: line`` in conf/benchmark/sroie_val.yaml), else ``protocol``."""
    protocol = bench.get("protocol") or cfg.protocol
    if protocol not in ("word", "line"):
        raise ConfigError(f"protocol={protocol}: must be word (the scene-text benchmarks') or line (text lines)")
    return protocol


def per_image_coverage(name: str, lexicon: Lexicon, keys: list[str]) -> str | None:
    """Why a per-image lexicon column would be meaningless (no image has a list: it would equal greedy), or None;
    warns when only some images lack one (those read lexicon-free)."""
    without = sum(not words for words in lexicon.lists_for(keys))
    if keys and without == len(keys):
        return f"no image has a word list in {lexicon.source} (keys must match the benchmark's, e.g. {keys[0]})"
    if without:
        log.warning("%s: %d of %d images have no word list in %s; they are read lexicon-free", name, without,
                    len(keys), lexicon.source)
    return None
