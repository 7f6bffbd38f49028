"""Which model and which reading ship: candidates and levers judged on the real_train hold-out, never a benchmark.

    python bench/model_choice.py [--ckpts A.pt B.pt ...] [--out bench/results/model_choice.json]

Every candidate trained with `data=real_finetune`'s split (the hold-out is 10 % of real_train by a hash of the
path, the same for all of them), so none of them saw a hold-out crop. Accuracy is reported on all 686 crops and on
the crops whose word never occurs among the real_train training crops ("new" words): IC15's video-like frames
put the same sign on both sides of a crop-level split, and the "new" subset judges without that advantage.

Levers measured on top of the first candidate (the shipped one): test-time width scales (re-read a crop the
decoder is unsure of at other widths, keep the most confident reading), and two ways of combining the first two
candidates, whose networks give the same frame count: averaging their frame posteriors, or keeping the more
confident of their two readings. Decoders: greedy and beam + LM, as shipped.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import torch
from holdout_seen_words import training_words
from record import write

from crnn_lit.holdout import holdout_source
from crnn_lit.metrics import protocol_normalize
from crnn_lit.reading.recognizer import Recognizer
from crnn_lit.transcription import decoder as named_decoder

CANDIDATES = ["data/pretrained/cpu_scene_text.pt", "data/stages/scene_text_medium_stage3.pt",
              "data/stages/scene_text_medium_stage4.pt", "data/stages/scene_text_medium_stage5.pt"]
DECODERS = ("greedy", "beam_lm")
SCALES = (0.7, 0.85, 1.0, 1.2, 1.4)  # input width factors (height stays the model's)
UNSURE = 0.5  # re-read at other scales only below this confidence


class WidthScaled:
    """A labelled source whose images are resized horizontally by ``factor`` before the model's preprocessing."""

    def __init__(self, source, factor: float):
        self.source, self.factor = source, factor

    def __len__(self) -> int:
        return len(self.source)

    def label(self, i: int) -> str:
        return self.source.label(i)

    def __getitem__(self, i: int):
        sample = self.source[i]
        h, w = sample.image.shape[:2]
        if self.factor != 1.0:
            interpolation = cv2.INTER_AREA if self.factor < 1 else cv2.INTER_LINEAR
            sample.image = cv2.resize(sample.image, (max(1, round(w * self.factor)), h), interpolation=interpolation)
        return sample


def frames(reader: Recognizer, source) -> dict[str, tuple[torch.Tensor, str]]:
    """key → (the crop's frame log-probs (T, C), its label)."""
    out = {}
    for r in reader.source_logits(source):
        for i, key in enumerate(r.keys):
            out[key] = (r.log_probs[: int(r.lengths[i]), i].float(), r.labels[i])
    return out


def read(decoder, log_probs: torch.Tensor):
    return decoder.decode(log_probs[:, None], torch.tensor([log_probs.shape[0]]))[0]


def score(keys: list[str], labels: dict[str, str], text_of: Callable[[str], str], seen: set[str]) -> dict:
    """Word accuracy % on all crops and on the new-word crops."""
    hits = {"all": [0, 0], "new_words": [0, 0]}
    for key in keys:
        label = protocol_normalize(labels[key])
        ok = protocol_normalize(text_of(key)) == label
        for part in ("all",) if label in seen else ("all", "new_words"):
            hits[part][0] += ok
            hits[part][1] += 1
    return {part: round(100 * h / n, 2) for part, (h, n) in hits.items()} | {"new_word_crops": hits["new_words"][1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpts", nargs="+", default=CANDIDATES)
    ap.add_argument("--out", default="bench/results/model_choice.json")
    args = ap.parse_args()
    seen, source = training_words(), holdout_source()
    readers = [Recognizer.from_checkpoint(c, "greedy") for c in args.ckpts]
    outputs = [frames(r, source) for r in readers]
    keys = sorted(set.intersection(*(set(o) for o in outputs)))
    labels = {k: outputs[0][k][1] for k in keys}
    decoders = {name: named_decoder(name, readers[0].charset) for name in DECODERS}
    # each candidate's reading of each crop, per decoder: decoded once, used by every score below
    readings = [{name: {k: read(d, out[k][0]) for k in keys} for name, d in decoders.items()} for out in outputs]
    result = {"holdout_crops": len(keys), "candidates": {}, "levers": {}}
    for ckpt, by in zip(args.ckpts, readings):
        result["candidates"][ckpt] = {name: score(keys, labels, lambda k, r=r: r[k].text, seen)
                                      for name, r in by.items()}

    first, second = outputs[0], outputs[1]
    scaled = {s: frames(readers[0], WidthScaled(source, s)) for s in SCALES if s != 1.0}
    same_frames = next(iter(first.values()))[0].shape[-1] == next(iter(second.values()))[0].shape[-1]
    for name, d in decoders.items():
        by_scale = {1.0: readings[0][name], **{s: {k: read(d, o[k][0]) for k in keys if k in o}
                                               for s, o in scaled.items()}}

        def rescaled(k: str, by_scale=by_scale) -> str:
            base = by_scale[1.0][k]
            if base.confidence >= UNSURE:
                return base.text
            return max((r[k] for r in by_scale.values() if k in r), key=lambda p: p.confidence).text

        result["levers"][f"width scales {list(SCALES)} when confidence < {UNSURE}, {name}"] = {
            **score(keys, labels, rescaled, seen),
            "re_read_share": round(sum(by_scale[1.0][k].confidence < UNSURE for k in keys) / len(keys), 3)}
        if not same_frames:
            continue  # charsets differ: no frame-level combination

        def averaged(k: str, d=d) -> str:  # mean of the two posteriors, frame by frame
            return read(d, torch.logsumexp(torch.stack([first[k][0], second[k][0]]), 0) - torch.log(torch.tensor(2.0))).text

        def more_confident(k: str, name=name) -> str:
            return max(readings[0][name][k], readings[1][name][k], key=lambda p: p.confidence).text

        pair = " + ".join(os.path.basename(c) for c in args.ckpts[:2])
        result["levers"][f"{pair}: frame posteriors averaged, {name}"] = score(keys, labels, averaged, seen)
        result["levers"][f"{pair}: the more confident reading, {name}"] = score(keys, labels, more_confident, seen)
    write(args.out, {"command": "python bench/model_choice.py", "ckpts": args.ckpts, **result})


if __name__ == "__main__":
    main()
