"""The DataModule with real sources: worker/rank sharding, seeded augmentation, and a training epoch over broken data."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from conftest import FAST, PREPROCESS
from corpus import BROKEN_EXPECTED, good_entries, write_broken_corpus, write_folder
from crnn_lit.charset import Charset
from crnn_lit.config import PROJECT_ROOT, compose_config
from crnn_lit.data.batching import WidthBatchSampler
from crnn_lit.data.datamodule import TextDataModule
from crnn_lit.data.sources.folder import FolderDataset
from crnn_lit.data.sources.mixed import HoldoutSplit
from crnn_lit.model.backbone import WidthPlan

output_length = WidthPlan().output_length  # the paper's plan: T = W // 4 + 1
from crnn_lit.train import train

LOWER = Charset.from_file(PROJECT_ROOT / "data" / "charsets" / "lowercase36.txt")


def _module(train, val=None, **kw) -> TextDataModule:
    if "width_policy" in kw:
        kw["preprocess"] = PREPROCESS.replace(width_policy=kw.pop("width_policy"))
    args = {"preprocess": PREPROCESS, "batch_size": 8, "eval_batch_size": 16, "num_workers": 0, "samples_per_epoch": None, "seed": 0}
    args.update(kw)
    return TextDataModule(train, val if val is not None else train, LOWER, output_length, **args)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return FolderDataset(write_folder(tmp_path_factory.mktemp("f") / "set", good_entries(61)))


@pytest.mark.parametrize("policy", ["bucketed", "keep_ratio"])
def test_two_workers_and_two_ranks_see_every_sample_exactly_once(folder, monkeypatch, policy):
    seen = []
    lengths = []
    for rank in (0, 1):
        monkeypatch.setattr(WidthBatchSampler, "_world", staticmethod(lambda r=rank: (r, 2)))
        loader = _module(folder, num_workers=2, width_policy=policy).train_dataloader()
        keys = [k for batch in loader for k in batch.keys]
        lengths.append((len(loader), sum(1 for _ in loader)))
        seen.append(keys)
        del loader
    assert sorted(seen[0] + seen[1]) == sorted(folder.paths)  # 61 samples, none twice, none lost
    assert not set(seen[0]) & set(seen[1])
    assert lengths[0] == lengths[1] and lengths[0][0] == lengths[0][1]  # same step count on both ranks


def test_balanced_rank_split_edge_cases(monkeypatch):
    from crnn_lit.data.batching import EpochSampler

    for n, bs, world in [(61, 8, 2), (64, 8, 3), (5, 8, 4), (1000, 64, 8), (3, 1, 2)]:
        got = []
        for rank in range(world):
            monkeypatch.setattr(WidthBatchSampler, "_world", staticmethod(lambda r=rank, w=world: (r, w)))
            s = WidthBatchSampler(EpochSampler(n, True, seed=1), bs, lambda i: 20 + i % 7)
            batches = list(s)
            assert len(batches) == len(s), (n, bs, world)
            got += [i for b in batches for i in b]
        if n >= world and (bs > 1 or n % world == 0):  # batches of 1 cannot be split to even out the ranks
            assert sorted(got) == list(range(n)), (n, bs, world)


@pytest.mark.parametrize("option", ["light", "strong"])
def test_augment_pipelines_run_on_gray_and_rgb_and_keep_the_size(option):
    augment = instantiate(compose_config([f"augment={option}"]).augment)
    augment.set_random_seed(0)
    rng = np.random.default_rng(0)
    for shape in [(32, 100), (32, 57, 3), (32, 16), (32, 400)]:
        image = rng.integers(0, 255, shape, dtype=np.uint8)
        for _ in range(10):
            out = augment(image=image)["image"]
            assert out.shape == image.shape and out.dtype == np.uint8


def _augmented_batches(folder, seed: int, workers: int) -> list[torch.Tensor]:
    augment = instantiate(compose_config(["augment=strong"]).augment)
    loader = _module(folder, augment=augment, num_workers=workers, seed=seed).train_dataloader()
    return [batch.images for batch in loader]


@pytest.mark.timeout(120)
def test_augmentation_is_reproducible_per_seed_with_workers(folder):
    threads = cv2.getNumThreads()
    cv2.setNumThreads(2)  # an OpenCV thread pool alive in the parent must not hang the forked workers
    warm = instantiate(compose_config(["augment=strong"]).augment)
    for _ in range(30):  # OpenCV work in this process starts its thread pool
        warm(image=np.zeros((32, 400), np.uint8))
    try:
        a, b = _augmented_batches(folder, 1, 2), _augmented_batches(folder, 1, 2)
    finally:
        cv2.setNumThreads(threads)
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    c = _augmented_batches(folder, 2, 2)
    assert not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, c, strict=False))
    d, e = _augmented_batches(folder, 1, 0), _augmented_batches(folder, 1, 0)
    assert all(torch.equal(x, y) for x, y in zip(d, e, strict=True))
    # seeded per batch, not per worker: the same augmented batches with or without workers
    assert all(torch.equal(x, y) for x, y in zip(a, d, strict=True))


def test_huge_source_without_samples_per_epoch_is_refused():
    from crnn_lit.data.sources.renderer import SyntheticWords, WordRenderer

    renderer = WordRenderer(str(PROJECT_ROOT / "data/words/english.txt"), str(PROJECT_ROOT / "data/fonts"), PREPROCESS)
    with pytest.raises(ValueError, match="samples_per_epoch"):
        _module(SyntheticWords(renderer, 10**9))


def test_one_training_epoch_over_the_broken_corpus(tmp_path, compose_cfg):
    """The Hydra app, data=folder over a corpus full of broken samples: one real epoch, finite loss, every
    broken sample skipped and counted under its reason."""
    root = write_broken_corpus(tmp_path / "broken", good=40)
    cfg = compose_cfg([*FAST, "data=folder", f"data.root={root}", "data.samples_per_epoch=null",
                       "data.mix.holdout=0.25", "augment=light", "data.num_workers=0"])
    metrics = train(cfg)
    assert np.isfinite(metrics["train/loss"]) and np.isfinite(metrics["val/loss"])
    rejected = {k.removeprefix("data/rejected_"): v for k, v in metrics.items() if k.startswith("data/rejected_")}
    train_side = HoldoutSplit(FolderDataset(root), "train", 0.25)
    # charset=lowercase removes out-of-charset characters (oov: remove): 'ßø!' is left empty, an empty_label
    reasons = {**BROKEN_EXPECTED, "bad/oov.png": "empty_label"}
    expected = Counter(reasons.get(train_side.key(i), "ok") for i in range(len(train_side)))
    del expected["ok"]
    assert len(expected) >= 3 and rejected == {k: float(v) for k, v in expected.items()}
    assert "data/padding_waste" in metrics
