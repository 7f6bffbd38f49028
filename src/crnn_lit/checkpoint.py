"""One checkpoint format, one loader.

Every checkpoint — a Lightning training checkpoint or a small weights-only file from ``save_weights`` —
carries a ``crnn_lit`` record: the charset and the model config (transform + backbone + rnn Hydra nodes, input
height and channels; a record without ``transform``, written before the stage existed, has none). ``load_model``
rebuilds the network from that record alone, with ``torch.load(weights_only=True)`` so opening a checkpoint never
executes pickled code, and checks that weights, charset and architecture agree.
A weights-only file may also carry ``training``: the training totals (images, wall-clock and CPU hours) of every
stage that led to it, so that a run started with ``init_from`` keeps counting from there; and ``reading``: the
model's own default decoding, chosen on the real_train hold-out for it (a named decoder and its settings, e.g. the
LM weights that suit this model; ``Recognizer``'s ``decoder="model"``). A file without one reads with ``beam_lm``.

    python -m crnn_lit.checkpoint weights RUN/checkpoints/epoch006.ckpt data/pretrained/name.pt [--half]
        [--reading '{"decoder": "beam_lm", "lm_weight": 0.3, "length_bonus": 0.5}']
    python -m crnn_lit.checkpoint import --format easyocr english_g2.pth english_g2.pt   # or --format dtrb
    python -m crnn_lit.checkpoint import --format ppocr PP-OCRv6_rec_small.onnx small.pt --charset printable95
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from crnn_lit.atomic import atomic_write
from crnn_lit.charset import Charset

CHECKPOINT_KEY = "crnn_lit"
FORMAT_VERSION = 1
# the key of ``crnn_lit.training.callbacks.LearningCurve``'s state in a Lightning checkpoint (its ``state_key``); named
# here rather than imported, as callbacks imports the training stack (tests/test_import_graph.py checks they agree)
LEARNING_CURVE_STATE_KEY = "LearningCurve"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked, with the reason spelled out."""


def _fingerprint(chars: str, model_config: dict) -> str:
    """Hash of what the weights mean: detects a charset or config edited after training (a swapped letter
    would otherwise silently mislabel every prediction)."""
    payload = json.dumps({"chars": chars, "model": model_config}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def model_record(charset: Charset, model_config: dict, training: dict | None = None,
                 reading: dict | None = None) -> dict:
    record = {"format_version": FORMAT_VERSION, "charset": charset.to_dict(), "model": model_config,
              "fingerprint": _fingerprint(charset.chars, model_config)}
    if training:
        record["training"] = training
    if reading:
        record["reading"] = _checked_reading(reading)
    return record


def _checked_reading(reading: dict) -> dict:
    """A default decoding: ``decoder`` (a name of ``crnn_lit.transcription.presets``) and that decoder's settings
    (plain values), refused in one line if it names no decoder."""
    from crnn_lit.transcription.presets import DECODERS

    if not isinstance(reading, dict) or reading.get("decoder") not in DECODERS:
        raise CheckpointError(f"a model's reading names one of the decoders {', '.join(DECODERS)} as 'decoder', "
                              f"with its settings beside it; got {reading!r}")
    return dict(reading)


@dataclass
class LoadedModel:
    model: torch.nn.Module
    charset: Charset
    config: dict  # the model config of the record (transform, backbone, rnn, height, channels)
    training: dict | None = None  # totals of the training that made it: images, wall_s, cpu_s (None: unknown)
    reading: dict | None = None  # its default decoding: {"decoder": name, **settings} (None: beam_lm as named)


def save_weights(path: str | Path, model: torch.nn.Module, charset: Charset, model_config: dict,
                 half: bool = False, training: dict | None = None, reading: dict | None = None) -> Path:
    """Write a weights-only file (optionally fp16), atomically: a killed write never leaves a truncated file.

    ``training``: the training totals to record (``{"images", "wall_s", "cpu_s"}``, see ``LoadedModel``);
    ``reading``: the model's default decoding (see the module docstring)."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    with atomic_write(path) as f:
        torch.save({CHECKPOINT_KEY: model_record(charset, model_config, training, reading), "state_dict": state}, f)
    return Path(path)


def _model_state(checkpoint: dict) -> dict:
    """Weights of the bare CRNN from either checkpoint flavour (Lightning prefixes them with ``model.``)."""
    state = checkpoint["state_dict"]
    if any(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    return state


def refusal(path: str | Path, err: Exception) -> str:
    """Our one line for a file ``torch.load(weights_only=True)`` refused. Never torch's own message: it ends with
    advice to load with ``weights_only=False``, which would run whatever code an untrusted file holds."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    if found:
        return (f"refusing {path}: loading it would run code it names ({found.group(1)}); crnn_lit reads only "
                "weights-only checkpoints (tensors and plain values) — use a file written by crnn_lit")
    return f"{path} is not a readable checkpoint (corrupt, or not a torch file; {type(err).__name__})"


def load_model(path: str | Path, expect_charset: Charset | None = None) -> LoadedModel:
    """Rebuild the model stored at ``path`` (eval mode, fp32).

    ``expect_charset``: fail unless the checkpoint's charset is exactly this one (use it when a config names a
    charset and the checkpoint must match it).
    """
    from crnn_lit.model.build import build_model  # model building pulls in Hydra; keep this module light

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 — corrupt, or a pickle that needs code execution: never trust it
        raise CheckpointError(refusal(path, err)) from None
    record = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if not record or "charset" not in record or "model" not in record:
        raise CheckpointError(f"{path} has no '{CHECKPOINT_KEY}' record (charset + model config); "
                              "it was not written by crnn_lit")
    charset = Charset.from_dict(record["charset"])
    if "fingerprint" not in record:  # written before fingerprints existed: nothing to verify against
        logging.getLogger(__name__).warning("%s has no fingerprint; charset and config are not verified", path)
    elif record["fingerprint"] != _fingerprint(charset.chars, record["model"]):
        raise CheckpointError(f"{path}: the charset or model config stored with the weights was altered after "
                              f"saving (fingerprint mismatch; stored charset {charset.chars!r}); refusing to load")
    if expect_charset is not None and expect_charset.chars != charset.chars:
        raise CheckpointError(f"charset mismatch: {path} was trained on {charset.chars!r} "
                              f"({len(charset)} chars) but {expect_charset.chars!r} ({len(expect_charset)}) is asked for")
    config = record["model"]
    state = _model_state(checkpoint)
    head = state.get("head.weight")
    if head is None or head.shape[0] != charset.num_classes:
        raise CheckpointError(
            f"{path}: the head has {None if head is None else head.shape[0]} outputs but the stored charset needs "
            f"{charset.num_classes} ({len(charset)} characters + blank) — the charset record was altered or belongs "
            "to another model")
    model = build_model(config["backbone"], config["rnn"], charset.num_classes, config["channels"],
                        config.get("transform"))
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise CheckpointError(f"{path}: weights do not fit the stored architecture; missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}, shape mismatch {wrong[:5]}")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return LoadedModel(model.eval(), charset, config, _training_totals(checkpoint, record), record.get("reading"))


def _training_totals(checkpoint: dict, record: dict) -> dict | None:
    """A Lightning checkpoint's LearningCurve counters (cumulative, earlier stages included), else the record's."""
    state = checkpoint.get("callbacks", {}).get(LEARNING_CURVE_STATE_KEY)
    if state is not None:
        return {k: state[k] for k in ("images", "wall_s", "cpu_s")}
    return record.get("training")


@dataclass
class Initialized:
    reinitialized: list[str]  # keys rebuilt rather than loaded whole (the head, when the charset differs)
    training: dict | None  # the source's training totals, which the new run continues from
    fresh: list[str] = field(default_factory=list)  # transform keys the source lacks: kept at their identity init


def _source_row(source: Charset, char: str) -> int | None:
    """The class of ``char`` in ``source`` (or of its other case), None when it has neither."""
    for c in (char, char.swapcase()):
        if c in source.chars:
            return source.chars.index(c) + 1
    return None


def init_from(model: torch.nn.Module, charset: Charset, path: str | Path, log=None) -> Initialized:
    """Start training ``model`` from the weights at ``path`` (fine-tuning).

    The architecture must match. When the checkpoint's charset differs from ``charset``, the head is rebuilt row
    by row: the blank's row and every character's row come from the same character in the checkpoint (or its
    other case, e.g. a lowercase model from a case-sensitive one); characters it never had keep their fresh
    initialization. Every other weight is loaded. A transformation stage the checkpoint does not have
    (``transform=tps`` added to a trained model) keeps its initialization, the identity warp, so the model first
    reads as the source did.
    """
    source = load_model(path)
    reinit: list[str] = []
    state = source.model.state_dict()
    target = model.state_dict()
    carried = None
    if source.charset.chars != charset.chars:
        reinit = [k for k in state if k.startswith("head.")]
        rows = [0] + [_source_row(source.charset, c) for c in charset.chars]  # class i ← source class rows[i]
        for key in reinit:
            if key in target and target[key].shape[1:] == state[key].shape[1:]:
                new = target[key].clone()
                for i, j in enumerate(rows):
                    if j is not None:
                        new[i] = state[key][j]
                state[key] = new
        carried = sum(j is not None for j in rows)
    fresh = [k for k in target if k not in state]  # a transformation stage the checkpoint has not: its identity init
    wrong = [k for k, v in state.items() if k not in target or target[k].shape != v.shape]
    wrong += [k for k in fresh if not k.startswith("transform.")]
    if wrong:
        raise CheckpointError(f"cannot fine-tune from {path}: its architecture differs at {wrong[:5]} "
                              f"(checkpoint model config: {source.config})")
    model.load_state_dict(state, strict=False)
    if log is not None:
        if reinit:
            log.info("initialized from %s; charset differs (%d → %d characters): head rebuilt by character "
                     "(%d of %d rows carried over, the rest fresh), all other weights loaded", path,
                     len(source.charset), len(charset), carried, charset.num_classes)
        else:
            log.info("initialized from %s (all weights)", path)
        if fresh:
            log.info("the checkpoint has no transformation stage: %d transform weights start as the identity "
                     "warp", len(fresh))
    return Initialized(reinit, source.training, fresh)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m crnn_lit.checkpoint", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    weights = sub.add_parser("weights", help="write the weights-only file of any crnn_lit checkpoint "
                                             "(charset, model config and training totals kept)")
    weights.add_argument("checkpoint")
    weights.add_argument("output")
    weights.add_argument("--half", action="store_true", help="store fp16 weights (half the size)")
    weights.add_argument("--reading", default=None, help="the model's default decoding as JSON: a decoder name and "
                         "its settings, e.g. '{\"decoder\": \"beam_lm\", \"lm_weight\": 0.3}' (default: the "
                         "checkpoint's own, if any)")
    imp = sub.add_parser("import", help="convert a DTRB ({None,TPS}-{VGG,ResNet}-BiLSTM-CTC), EasyOCR "
                                        "(generation 2) or PP-OCRv6 (ONNX) recognizer into a crnn_lit weights file, "
                                        "exactly")
    imp.add_argument("--format", choices=("dtrb", "easyocr", "ppocr"), required=True)
    imp.add_argument("checkpoint")
    imp.add_argument("output")
    imp.add_argument("--charset", default=None, help="dtrb/easyocr: the model's characters in class order (DTRB's "
                     "--character), or a charset file (easyocr: defaults to english_g2's); ppocr: keep only the "
                     "head rows of these characters (a string, a charset file or a shipped charset's name, e.g. "
                     "printable95), in that order (default: the model's whole dictionary)")
    imp.add_argument("--height", type=int, default=None, help="input height (default: conf/preprocess/<format>.yaml)")
    args = parser.parse_args(argv)
    try:
        if args.command == "import":
            out = import_checkpoint(args.checkpoint, args.output, args.format, args.charset, args.height)
            print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB)")
            return
        loaded = load_model(args.checkpoint)
        try:
            reading = json.loads(args.reading) if args.reading else loaded.reading
        except json.JSONDecodeError as err:
            raise CheckpointError(f"--reading is not JSON: {err}") from None
        out = save_weights(args.output, loaded.model, loaded.charset, loaded.config, half=args.half,
                           training=loaded.training, reading=reading)
    except CheckpointError as err:
        raise SystemExit(f"error: {err}") from None
    hours = "" if not loaded.training else f", {loaded.training['cpu_s'] / 3600:.2f} CPU-hours of training"
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB{hours})")


def import_checkpoint(path: str | Path, output: str | Path, fmt: str, charset: str | None = None,
                      height: int | None = None) -> Path:
    """A DTRB/EasyOCR recognizer (see ``crnn_lit.model.dtrb``) or a PP-OCR one (``crnn_lit.model.ppocr``) as a
    crnn_lit weights file; CheckpointError if it does not map."""
    from crnn_lit.model.build import build_model
    from crnn_lit.model.dtrb import EASYOCR_CHARSETS, ImportRefused, convert_dtrb, load_state
    from crnn_lit.preprocess import Preprocess

    if fmt == "ppocr":
        return _import_ppocr(path, output, charset, height)

    # conf/preprocess/{dtrb,easyocr}.yaml: DTRB trains on images stretched to 32×100; EasyOCR keeps the aspect
    # ratio at height 64 (and pads with the last column)
    preprocess = Preprocess.from_conf(fmt)
    if height:
        preprocess = preprocess.replace(height=height)
    if charset is None:
        if fmt != "easyocr":
            raise CheckpointError("--charset is required for DTRB models: their characters (DTRB's --character, "
                                  "in class order) are not stored in the .pth")
        charset = EASYOCR_CHARSETS["english_g2"]
    chars = Path(charset).read_text(encoding="utf-8").rstrip("\n") if Path(charset).is_file() else charset
    try:
        state, config, num_classes = convert_dtrb(load_state(path), preprocess.height, preprocess.fixed_width)
    except ImportRefused as err:
        raise CheckpointError(f"{path}: {err}") from None
    rectified = config["transform"].get("rectified_size")
    if rectified and preprocess.width_policy == "fixed":  # DTRB's TPS rectifies to its imgW: its input width
        preprocess = preprocess.replace(fixed_width=rectified[1])
    model_charset = Charset(chars, name=f"{fmt}-import")
    if model_charset.num_classes != num_classes:
        raise CheckpointError(f"{path} predicts {num_classes} classes (blank + {num_classes - 1} characters) but "
                              f"the charset has {len(model_charset)} characters")
    config |= preprocess.replace(channels=config["channels"]).record()  # the channels the weights take
    model = build_model(config["backbone"], config["rnn"], num_classes, config["channels"], config["transform"])
    model.load_state_dict(state)
    return save_weights(output, model.eval(), model_charset, config)



def _import_ppocr(path: str | Path, output: str | Path, keep: str | None, height: int | None) -> Path:
    from crnn_lit.model.build import build_model
    from crnn_lit.model.dtrb import ImportRefused
    from crnn_lit.model.ppocr import convert_ppocr
    from crnn_lit.paths import MissingFile
    from crnn_lit.preprocess import Preprocess

    name = "ppocr-import"
    if keep is not None:
        try:  # a charset file or a shipped charset's name (printable95), else the characters themselves
            charset = Charset.from_file(keep)
            keep, name = charset.chars, charset.name
        except (MissingFile, OSError, ValueError):  # not a path (too long, a NUL): the characters
            pass
    if not Path(path).is_file():
        raise CheckpointError(f"model not found: {path}")
    try:
        state, config, chars = convert_ppocr(path, keep)
        model_charset = Charset(chars, name=name)
    except (ImportRefused, ValueError) as err:
        raise CheckpointError(f"{path}: {err}") from None
    if height and height != config["height"]:
        raise CheckpointError(f"{path} takes input height {config['height']}, not {height}")
    # conf/preprocess/ppocr.yaml: PP-OCR's reader (BGR, height 48, right-padded with zeros to width 320)
    config |= Preprocess.from_conf("ppocr").replace(height=config["height"], channels=config["channels"]).record()
    model = build_model(config["backbone"], config["rnn"], model_charset.num_classes, config["channels"],
                        config["transform"])
    model.load_state_dict(state)
    return save_weights(output, model.eval(), model_charset, config)


if __name__ == "__main__":
    main()
