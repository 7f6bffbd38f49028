"""Decoding speed: greedy, prefix beam search (plain and LM-fused, `decoder=beam_lm`), lexicon-based decoding with the 90k lexicon, N_δ retrieval.

    python bench/decode_speed.py --ckpt outputs/train/runs/<run>/checkpoints/<best>.ckpt   # realistic log-probs
    python bench/decode_speed.py                                                           # synthetic log-probs

With ``--ckpt`` the model reads ``--n`` words rendered by the embedded renderer (seed 123, resized to 32×100,
so T = 26); without it, log-probs are *synthetic* (peaked alignments of lexicon words with noise and ~8 %
misread characters) and the JSON says so. One thread, single process. Reported:

* greedy, beam (width 10) and LM-fused beam (crnn_lit.transcription.presets "beam_lm") ms/image, decoding batches of ``--batch``;
* lexicon decoding (87,623 words, δ = 3): ms/image decoding one image at a time (median, p90, mean, max) and
  batched, the size of N_δ(l′), and the number of images whose answer
  differs from scoring *every* word of N_δ(l′) exactly (``prune=False``) — must be 0;
* N_δ retrieval per query for the symmetric-delete index, rapidfuzz (per query and batched) and the BK-tree
  (on the first ``--bktree-queries`` queries), checked to return identical sets, with build times;
* the straightforward baseline (BK-tree + ``ctc_loss`` over all of N_δ) on the BK-tree queries.

Writes bench/results/decode_speed.json.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from record import write

from crnn_lit.charset import Charset
from crnn_lit.metrics import TextMetrics
from crnn_lit.paths import find_asset
from crnn_lit.transcription import (
    BeamDecoder,
    BKTree,
    GreedyDecoder,
    Lexicon,
    LexiconDecoder,
    RapidfuzzIndex,
    SymDeleteIndex,
)
from crnn_lit.transcription.ctc import ctc_log_likelihoods_log_space
from crnn_lit.transcription.presets import decoder as named_decoder
from crnn_lit.transcription.presets import decoder_settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LEXICON = ROOT.parent / "shared" / "data" / "lexicons" / "mjsynth90k_generic_vocabulary.txt"
T_FRAMES = 26  # width 100 → T = 100 // 4 + 1


def model_log_probs(ckpt: str, n: int, batch: int) -> tuple[torch.Tensor, list[str], Charset, str]:
    """Run the checkpoint on ``n`` rendered words (32×100) → log-probs (T, n, C), labels, charset, description."""
    import cv2

    from crnn_lit.data.sources.renderer import WordRenderer
    from crnn_lit.reading.recognizer import Recognizer

    reader = Recognizer.from_checkpoint(ckpt, "greedy", batch_size=batch)
    charset = reader.charset
    renderer = WordRenderer(words_file=str(ROOT / "data/words/english.txt"), fonts_dir=str(ROOT / "data/fonts"),
                            preprocess=reader.preprocess, seed=123, charset_chars=charset.chars)
    images, labels = [], []
    for i in range(n):
        sample = renderer.render(i)
        img = cv2.resize(sample.image, (100, 32), interpolation=cv2.INTER_AREA if sample.image.shape[1] > 100
                         else cv2.INTER_LINEAR)
        img = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
        images.append(torch.from_numpy(img.astype(np.float32) / 127.5 - 1.0))
        labels.append(sample.label)
    # one width (100): the batches are the images in order, ``batch`` at a time
    outs = [r.log_probs for r in reader.recognize(images, [str(i) for i in range(n)])]
    what = f"model {ckpt} on {n} rendered words (WordRenderer seed 123, english.txt, resized to 32x100)"
    return torch.cat(outs, dim=1), labels, charset, what


def synthetic_log_probs(words: list[str], charset: Charset, steps: int, seed: int = 0) -> torch.Tensor:
    """Peaked log-probs of a random alignment of each word: per-frame peak of 7–12 logits (3–6 on 3 % of the
    frames) over N(0, 1) noise; 8 % of the characters are misread (the true class keeps a second peak 1.5 lower)."""
    rng = np.random.default_rng(seed)
    classes = charset.num_classes
    logits = rng.normal(size=(steps, len(words), classes))
    for n, word in enumerate(words):
        codes = charset.encode(word)
        minimum = [0]  # segments: blank, c1, blank, c2, ..., cL, blank
        for i, c in enumerate(codes):
            if i:
                minimum.append(1 if c == codes[i - 1] else 0)
            minimum.append(1)
        minimum.append(0)
        extra = rng.multinomial(steps - sum(minimum), np.ones(len(minimum)) / len(minimum))
        t = 0
        for seg, (m, e) in enumerate(zip(minimum, extra)):
            true = 0 if seg % 2 == 0 else codes[seg // 2]
            read = true
            if true and rng.random() < 0.08:
                read = int(rng.integers(1, classes))
            for _ in range(m + e):
                peak = rng.uniform(3.0, 6.0) if rng.random() < 0.03 else rng.uniform(7.0, 12.0)
                logits[t, n, read] += peak
                if read != true:
                    logits[t, n, true] += peak - 1.5
                t += 1
    return torch.from_numpy(logits).float().log_softmax(2)


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def batched(decoder, lp: torch.Tensor, lengths: torch.Tensor, batch: int) -> list:
    out = []
    for s in range(0, lp.shape[1], batch):
        out.extend(decoder(lp[:, s:s + batch], lengths[s:s + batch]))
    return out


def stats(values_ms: list[float]) -> dict:
    a = np.asarray(values_ms)
    return {"median": round(float(np.median(a)), 4), "p90": round(float(np.percentile(a, 90)), 4),
            "mean": round(float(a.mean()), 4), "max": round(float(a.max()), 4)}


def accuracy(predictions: list, labels: list[str] | None) -> float | None:
    if labels is None:
        return None
    m = TextMetrics(normalize=True)
    m.update([p.text for p in predictions], labels)
    return round(float(m.compute()["acc"]), 4)


def log_probs_to_decode(args, raw_lexicon: Lexicon) -> tuple[torch.Tensor, list[str], Charset, str, bool]:
    """The model's log-probs on rendered words (``--ckpt``), else synthetic ones: (lp, labels, charset, what,
    synthetic)."""
    if args.ckpt:
        return (*model_log_probs(args.ckpt, args.n, args.batch), False)
    charset = Charset.from_file(ROOT / "data" / "charsets" / "lowercase36.txt")
    rng = np.random.default_rng(args.seed)
    vocab = [w for w in raw_lexicon.normalized(charset).words if len(w) <= 12]
    english = [w for w in (charset.normalize(x) for x in (ROOT / "data/words/english.txt").read_text().split())
               if w and len(w) <= 12]
    words = [vocab[i] if rng.random() < 0.8 else english[i % len(english)]
             for i in rng.integers(0, len(vocab), size=args.n)]
    source = ("SYNTHETIC log-probs (no --ckpt): peaked random alignments of lexicon/english words with noise, "
              "uncertain frames and 8% misread characters — not a trained model's outputs")
    return synthetic_log_probs(words, charset, T_FRAMES, args.seed), words, charset, source, True


def lexicon_free(charset: Charset, lp: torch.Tensor, lengths: torch.Tensor, labels, batch: int) -> tuple[dict, list]:
    """Greedy, beam and LM-fused beam (crnn_lit.transcription.presets "beam_lm"): ms/image and readings → (records, greedy's)."""
    n = lp.shape[1]
    greedy = GreedyDecoder(charset)
    g_pred = batched(greedy, lp, lengths, batch)
    g_time = timed(lambda: batched(greedy, lp, lengths, batch))
    beam = BeamDecoder(charset, beam_width=10)
    b_pred = batched(beam, lp, lengths, batch)
    b_time = timed(lambda: batched(beam, lp, lengths, batch))
    out = {"greedy": {"ms_per_image": round(g_time / n * 1e3, 4), "accuracy": accuracy(g_pred, labels)}}
    out["beam"] = {"beam_width": 10, "prune_mass": beam.prune_mass, "prune_top_k": beam.prune_top_k,
                   "ms_per_image": round(b_time / n * 1e3, 4), "target_ms": 1.0,
                   "accuracy": accuracy(b_pred, labels),
                   "differs_from_greedy": sum(a.text != b.text for a, b in zip(g_pred, b_pred))}
    # the first pass fills the LM caches
    cfg = decoder_settings("beam_lm")
    beam_lm = named_decoder("beam_lm", charset)
    start = time.perf_counter()
    l_pred = batched(beam_lm, lp, lengths, batch)
    cold_s = time.perf_counter() - start
    l_time = timed(lambda: batched(beam_lm, lp, lengths, batch))
    out["beam_lm"] = {"lm": find_asset(cfg["lm"], "lm", "LM", (".json.gz",)).name, "order": beam_lm.fusion.lm.order,
                      "lm_weight": cfg["lm_weight"], "length_bonus": cfg["length_bonus"], "beam_width": cfg["beam_width"],
                      "ms_per_image": round(l_time / n * 1e3, 4),
                      "first_pass_ms_per_image": round(cold_s / n * 1e3, 4),
                      "target_ms": 2.0, "accuracy": accuracy(l_pred, labels),
                      "differs_from_greedy": sum(a.text != b.text for a, b in zip(g_pred, l_pred))}
    return out, g_pred


def lexicon_based(charset: Charset, raw_lexicon: Lexicon, lp: torch.Tensor, lengths: torch.Tensor, labels,
                  queries: list[str], args) -> tuple[dict, LexiconDecoder, list]:
    """Lexicon decoding (δ = ``args.delta``): one image at a time and batched, against scoring every word of
    N_δ(l′) → (record, the decoder, its readings)."""
    n = lp.shape[1]
    start = time.perf_counter()
    decoder = LexiconDecoder(charset, raw_lexicon, delta=args.delta)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    index = decoder.index
    build_s = time.perf_counter() - start
    per_image_ms, preds = [], []
    for i in range(n):
        start = time.perf_counter()
        preds.extend(decoder(lp[:, i:i + 1], lengths[i:i + 1]))
        per_image_ms.append((time.perf_counter() - start) * 1e3)
    batched_s = timed(lambda: batched(decoder, lp, lengths, args.batch), repeat=1)
    exhaustive = LexiconDecoder(charset, raw_lexicon, delta=args.delta, prune=False)
    exhaustive._index = index  # same retrieval, every word of N_delta scored
    start = time.perf_counter()
    ref = batched(exhaustive, lp, lengths, args.batch)
    exhaustive_s = time.perf_counter() - start
    nd_sizes = [len(ids) for ids in index.search_many(queries, args.delta)]
    record = {
        "lexicon": args.lexicon, "words": len(decoder.lexicon), "dropped": decoder.lexicon.dropped,
        "delta": args.delta, "fallback": decoder.fallback, "candidates": decoder.candidates,
        "one_image_at_a_time_ms": stats(per_image_ms), "target_median_ms": 5.0,
        "batched_ms_per_image": round(batched_s / n * 1e3, 4),
        "score_every_candidate_ms_per_image": round(exhaustive_s / n * 1e3, 4),
        "answers_differing_from_scoring_all_of_n_delta": sum(a.text != b.text for a, b in zip(preds, ref)),
        "max_confidence_rel_diff": float(max((abs(a.confidence - b.confidence) / max(b.confidence, 1e-300)
                                               for a, b in zip(preds, ref)), default=0.0)),
        "n_delta_size": {"mean": round(float(np.mean(nd_sizes)), 1), "median": float(np.median(nd_sizes)),
                         "p90": float(np.percentile(nd_sizes, 90)), "max": int(max(nd_sizes))},
        "accuracy": accuracy(preds, labels),
        "lexicon_load_and_normalize_s": round(load_s, 3), "index_build_s": round(build_s, 3),
    }
    return record, decoder, preds


def per_query(index, queries: list[str], delta: int) -> tuple[list[np.ndarray], list[float]]:
    ms, out = [], []
    for q in queries:
        s = time.perf_counter()
        out.append(index.search(q, delta))
        ms.append((time.perf_counter() - s) * 1e3)
    return out, ms


def retrieval(sd: SymDeleteIndex, build_s: float, queries: list[str], args) -> tuple[dict, BKTree]:
    """N_δ retrieval per query: symmetric-delete (the decoder's), rapidfuzz, the paper's BK-tree; same sets?"""
    words = sd.words
    start = time.perf_counter()
    rf = RapidfuzzIndex(words)
    rf_build = time.perf_counter() - start
    start = time.perf_counter()
    bk = BKTree(words)
    bk_build = time.perf_counter() - start
    sd_res, sd_ms = per_query(sd, queries, args.delta)
    rf_res, rf_ms = per_query(rf, queries, args.delta)
    start = time.perf_counter()
    rf_many = []
    for s in range(0, len(queries), args.batch):
        rf_many.extend(rf.search_many(queries[s:s + args.batch], args.delta))
    rf_many_ms = (time.perf_counter() - start) * 1e3 / len(queries)
    sub = queries[: args.bktree_queries]
    bk_res, bk_ms = per_query(bk, sub, args.delta)
    visited = [bk.visited_nodes(q, args.delta) for q in sub[:20]]
    identical = (all(np.array_equal(a, b) for a, b in zip(sd_res, rf_res))
                 and all(np.array_equal(a, b) for a, b in zip(rf_res, rf_many))
                 and all(np.array_equal(a, b) for a, b in zip(bk_res, sd_res)))
    raw = [len(sd.raw_candidates(q)) for q in queries]
    return {
        "queries": len(queries), "delta": args.delta, "identical_results": identical,
        "symdelete": {"ms_per_query": stats(sd_ms), "build_s": round(build_s, 3), "entries": sd.entries,
                      "memory_mb": round(sd.nbytes / 2**20, 1),
                      "unverified_candidates_mean": round(float(np.mean(raw)), 1)},
        "rapidfuzz": {"ms_per_query": stats(rf_ms), "batched_ms_per_query": round(rf_many_ms, 4),
                      "build_s": round(rf_build, 3)},
        "bktree": {"ms_per_query": stats(bk_ms), "queries": len(sub), "build_s": round(bk_build, 3),
                   "visited_fraction_first20": round(float(np.mean(visited)) / len(words), 3)},
    }, bk


def straightforward_baseline(bk: BKTree, decoder: LexiconDecoder, lp: torch.Tensor, queries: list[str],
                             preds: list) -> dict:
    """The obvious implementation: BK-tree retrieval + ``ctc_loss`` over all of N_δ, on the BK-tree's queries."""
    encoded = decoder._encoded
    base_ms, agree = [], 0
    for i, q in enumerate(queries):
        s = time.perf_counter()
        ids = bk.search(q, decoder.delta)
        text = q
        if ids.size:
            frames = lp[:, i].double().numpy()
            scores = ctc_log_likelihoods_log_space(frames, encoded.codes[ids], encoded.lengths[ids])
            if np.isfinite(scores).any():
                text = encoded.words[ids[int(np.argmax(scores))]]
        base_ms.append((time.perf_counter() - s) * 1e3)
        agree += text == preds[i].text
    return {"ms_per_image": stats(base_ms), "images": len(queries), "same_answer_as_decoder": agree}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", help="trained checkpoint (crnn_lit.checkpoint.load_model); omit for synthetic log-probs")
    ap.add_argument("--n", type=int, default=1000, help="images")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lexicon", default=str(DEFAULT_LEXICON))
    ap.add_argument("--delta", type=int, default=3)
    ap.add_argument("--bktree-queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "decode_speed.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    raw_lexicon = Lexicon.from_file(args.lexicon)
    lp, labels, charset, source, synthetic = log_probs_to_decode(args, raw_lexicon)
    print(f"log-probs: {source}", file=sys.stderr)
    steps, n = lp.shape[0], lp.shape[1]
    lengths = torch.full((n,), steps, dtype=torch.long)
    results: dict = {"log_probs": source, "synthetic": synthetic, "images": n, "T": steps,
                     "classes": charset.num_classes, "batch": args.batch}
    free, g_pred = lexicon_free(charset, lp, lengths, labels, args.batch)
    results.update(free)
    print(f"greedy {results['greedy']}\nbeam {results['beam']}\nbeam_lm {results['beam_lm']}", file=sys.stderr)
    queries = [p.text for p in g_pred]  # l′ of every image
    results["lexicon"], decoder, preds = lexicon_based(charset, raw_lexicon, lp, lengths, labels, queries, args)
    print(f"lexicon {results['lexicon']}", file=sys.stderr)
    results["retrieval"], bk = retrieval(decoder.index, results["lexicon"]["index_build_s"], queries, args)
    print(f"retrieval {results['retrieval']}", file=sys.stderr)
    results["baseline_bktree_plus_ctc_loss"] = straightforward_baseline(
        bk, decoder, lp, queries[: args.bktree_queries], preds)
    write(args.out, results)


if __name__ == "__main__":
    main()
