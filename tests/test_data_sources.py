"""Real-data sources (folder, Synth90k, LMDB), the converter/inspector CLI, mixing, and broken-data safety."""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image

from conftest import PREPROCESS
from corpus import (
    BROKEN_EXPECTED,
    encode,
    good_entries,
    word_image,
    write_broken_corpus,
    write_dtrb_lmdb,
    write_folder,
    write_synth90k,
)
from crnn_lit.charset import Charset
from crnn_lit.config import PROJECT_ROOT
from crnn_lit.data import cli
from crnn_lit.data.batching import Collate, padding_waste
from crnn_lit.data.dataset import Item, PreparedDataset
from crnn_lit.data.sample import BadSample
from crnn_lit.data.sources import detect_format, open_source
from crnn_lit.data.sources.base import sizes_of
from crnn_lit.data.sources.folder import FolderDataset
from crnn_lit.data.sources.image_io import decode_image, size_from_bytes
from crnn_lit.data.sources.lmdb import LmdbDataset, LmdbWriter, close_env
from crnn_lit.data.sources.mixed import HoldoutSplit, MixedSource, split_counts
from crnn_lit.data.sources.synth90k import Synth90k
from crnn_lit.model.backbone import WidthPlan
from crnn_lit.preprocess import Resize

output_length = WidthPlan().output_length  # the paper's plan: T = W // 4 + 1

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
LOWER = Charset.from_file(PROJECT_ROOT / "data" / "charsets" / "lowercase36.txt")


def _prepared(source, max_width=400):
    return PreparedDataset(source, LOWER, PREPROCESS.replace(max_width=max_width), output_length)


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return write_broken_corpus(tmp_path_factory.mktemp("broken") / "corpus")


@pytest.fixture(scope="module")
def broken_lmdb(broken, tmp_path_factory):
    """The broken corpus as an LMDB archive, with broken records written raw (the converter would skip them)."""
    folder = FolderDataset(broken)
    path = tmp_path_factory.mktemp("lmdb") / "broken.lmdb"
    with LmdbWriter(path) as w:
        for i in range(len(folder)):
            data, label, _ = folder.raw(i)
            w.add(data, label)
        w.add(encode(word_image("fine", 9)), "fine")
        w.add(encode(word_image("gone", 9)), "gone")  # its image record is deleted below
        w.add(encode(word_image("latin", 9)), "latin")  # its label is replaced by non-UTF-8 bytes below
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        n = int(txn.get(b"num-samples"))
        txn.delete(b"image-%09d" % (n - 1))
        txn.put(b"label-%09d" % n, b"caf\xe9")
    env.close()
    return path


# --- image decoding and headers ------------------------------------------------------------------------------
def test_header_sizes_match_pil_without_decoding():
    for fmt, kw in [("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}), ("BMP", {}), ("WEBP", {})]:
        data = encode(word_image("header", 0, height=37, channels=3), fmt, **kw)
        assert size_from_bytes(data) == Image.open(io.BytesIO(data)).size, fmt
    assert size_from_bytes(b"garbage") is None


def test_decode_maps_every_failure_to_a_reason(broken):
    for rel, expected in BROKEN_EXPECTED.items():
        path = broken / rel
        if expected in ("empty_file", "unreadable", "bad_image"):
            with pytest.raises(BadSample) as err:
                decode_image(path, rel)
            assert err.value.reason == expected, rel
    assert decode_image(broken / "bad/rgba.png", "x").shape == (30, 90, 4)
    deep = decode_image(broken / "bad/deep16.png", "x")
    assert deep.dtype == np.uint8 and deep.min() == 0 and deep.max() == 255  # 16 → 8 bits, full range kept
    with pytest.raises(BadSample, match="missing_file"):
        decode_image(broken / "bad/never_written.png", "x")


# --- folder --------------------------------------------------------------------------------------------------
def test_folder_skips_bad_index_lines_with_one_summary(tmp_path, caplog):
    entries, extra = [(f"{i}.png", encode(word_image("ab", i)), f"w{i}") for i in range(3)], [
        b"no-tab-here", b"x.png\t\xff\xfe", b"", b"gone.png\tgone"]
    write_folder(tmp_path, entries, extra)
    with caplog.at_level(logging.WARNING):
        ds = FolderDataset(tmp_path)
    assert len(ds) == 3 and ds.labels == ["w0", "w1", "w2"] and ds.key(1) == "1.png"
    assert dict(ds.skipped.counts) == {"no_tab": 1, "not_utf8": 1, "missing_file": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "kept 3 samples, skipped 3" in warnings[0] and "labels.tsv:4" in warnings[0]  # says where
    assert ds.size(2) == (24, 32) and ds.size(2) == (24, 32)
    assert FolderDataset(tmp_path, limit=2).labels == ["w0", "w1"]
    with pytest.raises(FileNotFoundError, match="labels file"):
        FolderDataset(tmp_path / "nowhere")


def test_broken_corpus_every_sample_is_handled(broken):
    ds = FolderDataset(broken)
    assert dict(ds.skipped.counts) == {"no_tab": 1, "not_utf8": 1, "missing_file": 1}
    prepared = _prepared(ds)
    outcome = {}
    for i in range(len(ds)):
        result = prepared[i]
        outcome[ds.key(i)] = "ok" if isinstance(result, Item) else result.reason
        if isinstance(result, Item):
            assert result.image.shape[1] == 32 and 16 <= result.image.shape[2] <= 400
            assert torch_finite(result.image)
    assert {k: v for k, v in outcome.items() if k.startswith("bad/")} == {
        k: v for k, v in BROKEN_EXPECTED.items()}
    assert prepared.width(ds.paths.index("bad/huge_width.png")) == 400  # clamped, never 20000 px of tensor
    batch = Collate(output_length)([prepared[i] for i in range(len(ds))])
    assert batch.rejected == {"empty_file": 1, "unreadable": 2, "bad_image": 1, "empty_label": 1, "out_of_charset": 1}


def torch_finite(t) -> bool:
    return bool(t.isfinite().all())


def test_svt_benchmark_loads_as_published():
    svt = SHARED_DATA / "benchmarks" / "svt"
    if not (svt / "labels.tsv").is_file():
        pytest.skip(f"SVT benchmark not present at {svt} (shared data is optional)")
    ds = FolderDataset(svt)
    assert len(ds) == 647 and not ds.skipped
    assert (ds.key(0), ds.label(0)) == ("images/18_01_0.png", "DOOR")
    assert ds[0].label == "DOOR" and ds[0].image.ndim in (2, 3)


def test_bucketed_padding_waste_on_iiit5k_widths():
    iiit5k = SHARED_DATA / "benchmarks" / "iiit5k"
    if not (iiit5k / "labels.tsv").is_file():
        pytest.skip(f"IIIT5K benchmark not present at {iiit5k} (only its image widths are measured)")
    ds = FolderDataset(iiit5k)
    waste = {}
    for policy in ("bucketed", "keep_ratio", "fixed"):
        resize = Resize(32, 16, 400, policy, 100)
        widths = [resize.width_for(*ds.size(i)) for i in range(len(ds))]
        waste[policy] = padding_waste(widths, 64, bucketed=policy == "bucketed")
    assert waste["bucketed"] < 0.10 < waste["keep_ratio"]
    assert waste["fixed"] == 0.0


# --- Synth90k ------------------------------------------------------------------------------------------------
def test_synth90k_labels_lexicon_check_and_broken_images(tmp_path, caplog):
    root = write_synth90k(tmp_path / "90kDICT32px", per_word=2)
    lines = (root / "annotation_train.txt").read_text().splitlines()
    lines[3] = lines[3].rsplit(" ", 1)[0] + " 0"  # lexicon index pointing at another word
    lines.append("./1/1/garbage-line-without-fields")
    first = lines[0].split()[0]
    (root / first).write_bytes(b"")  # the archive's zero-byte images
    (root / "annotation_train.txt").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        ds = Synth90k(str(root), "train")
    assert len(ds) == 16 and ds.lexicon_mismatches == 1 and ds.skipped.counts == {"malformed_line": 1}
    assert ds.key(1) == "1/1/1_PAPER_1.jpg" and ds.label(1) == "PAPER" and ds[1].label == "PAPER"
    assert any("differ from their lexicon entry" in r.getMessage() for r in caplog.records)
    batch = Collate(output_length)([_prepared(ds)[i] for i in range(len(ds))])
    assert batch.rejected == {"empty_file": 1} and len(batch) == 15
    assert batch.labels[0] == "paper"  # case folded by the charset
    header = Synth90k(str(root), "train", widths="header")
    assert header.size(1) == (60, 32) and ds.size(1) == (16 * 5 + 8, 32)  # true header vs estimate
    report = cli.convert(ds, tmp_path / "mj.lmdb", "synth90k:test")
    assert report["written"] == 15 and report["skipped"] == {"empty_file": 1}
    assert LmdbDataset(tmp_path / "mj.lmdb").label(0) == "PAPER"


# --- LMDB ----------------------------------------------------------------------------------------------------
def test_lmdb_written_by_us_reads_back(tmp_path, broken):
    folder = FolderDataset(broken)
    report = cli.convert(folder, tmp_path / "out.lmdb", "folder:test", workers=1, commit_every=5)
    assert report["skipped"] == {"empty_file": 1, "unreadable": 2, "bad_image": 1, "empty_label": 1}
    ds = LmdbDataset(tmp_path / "out.lmdb")
    kept = [i for i in range(len(folder)) if BROKEN_EXPECTED.get(folder.key(i), "ok") not in
            ("empty_file", "unreadable", "bad_image", "empty_label")]
    assert len(ds) == report["written"] == len(kept)
    for j, i in enumerate(kept):
        sample, original = ds[j], folder[i]
        assert sample.label == original.label and np.array_equal(sample.image, original.image)
        assert ds.size(j) == folder.size(i) and sample.key == f"image-{j + 1:09d}"
    with ds._env(0).begin() as txn:
        assert txn.get(b"size-000000001") == b"%d %d" % folder.size(kept[0])  # our optional size records


def test_lmdb_reads_dtrb_archives_and_trees_unchanged(tmp_path):
    a = [(data, label) for _, data, label in good_entries(5)]
    b = [(data, label) for _, data, label in good_entries(3, seed=50)]
    write_dtrb_lmdb(tmp_path / "tree" / "training" / "MJ" / "MJ_train", a)
    write_dtrb_lmdb(tmp_path / "tree" / "training" / "ST", b)
    ds = LmdbDataset(tmp_path / "tree" / "training")
    assert len(ds) == 8 and detect_format(tmp_path / "tree") == "lmdb"
    assert [ds.key(i) for i in (0, 5)] == ["MJ/MJ_train/image-000000001", "ST/image-000000001"]
    assert [ds.label(i) for i in range(8)] == [lab for _, lab in a + b]
    for i, (data, _) in enumerate(a + b):  # no size records: read from the image header
        assert ds.size(i) == Image.open(io.BytesIO(data)).size
    assert len(LmdbDataset(tmp_path / "tree", limit=6)) == 6


def test_lmdb_missing_key_and_bad_label_are_counted(broken_lmdb):
    ds = LmdbDataset(broken_lmdb)
    prepared = _prepared(ds)
    n = len(ds)
    assert isinstance(prepared[n - 3], Item)
    assert (prepared[n - 2].reason, prepared[n - 1].reason) == ("missing_key", "not_utf8")
    batch = Collate(output_length)([prepared[i] for i in range(n)])
    assert batch.rejected == {"empty_file": 1, "unreadable": 2, "bad_image": 1, "empty_label": 1,
                              "out_of_charset": 1, "missing_key": 1, "not_utf8": 1}
    assert ds.size(n - 2) == (100, 32)  # no image: a plausible size, the sample is rejected when read


def test_lmdb_is_fork_safe_and_never_pickles_an_open_env(broken_lmdb):
    from torch.utils.data import DataLoader

    from crnn_lit.data.sources import lmdb as lmdb_source

    ds = LmdbDataset(broken_lmdb)
    ds.size(0)  # opens the environment in this process (the sampler does that)
    assert (os.getpid(), str(ds.dirs[0])) in lmdb_source._ENVS
    blob = pickle.dumps(ds)
    assert b"Environment" not in blob
    clone = pickle.loads(blob)
    assert clone.label(0) == ds.label(0)
    good = [i for i in range(len(ds)) if isinstance(_prepared(ds)[i], Item)]
    loader = DataLoader(_prepared(ds), batch_size=None, sampler=good, num_workers=2,
                        multiprocessing_context="fork")
    keys = [item.key for item in loader]
    assert keys == [ds.key(i) for i in good]


def _counted_header_reads(monkeypatch) -> dict:
    """Counts the per-sample size reads of LMDB sources (image headers) from here on."""
    from crnn_lit.data.sources import lmdb as lmdb_source

    calls = {"n": 0}
    real = lmdb_source.size_from_bytes

    def counted(data):
        calls["n"] += 1
        return real(data)

    monkeypatch.setattr(lmdb_source, "size_from_bytes", counted)
    return calls


def _dtrb_archive(path, n=40, seed=0):
    entries = good_entries(n, seed=seed)
    write_dtrb_lmdb(path, [(data, label) for _, data, label in entries])
    return [Image.open(io.BytesIO(data)).size for _, data, _ in entries]


def test_lmdb_size_index_is_written_once_and_reused(tmp_path, monkeypatch):
    truth = _dtrb_archive(tmp_path / "a.lmdb")
    reads = _counted_header_reads(monkeypatch)
    first = LmdbDataset(tmp_path / "a.lmdb").sizes(np.arange(40))
    index = tmp_path / "a.lmdb" / "crnn_lit_sizes.npz"  # beside the archive: its folder is writable
    assert reads["n"] == 40 and first.tolist() == [list(s) for s in truth]
    written = index.stat().st_mtime_ns
    again = LmdbDataset(tmp_path / "a.lmdb")  # a second run
    assert again.sizes(np.arange(40)).tolist() == first.tolist() and again.size(7) == truth[7]
    assert reads["n"] == 40 and index.stat().st_mtime_ns == written  # no header read, no rewrite
    limited = LmdbDataset(tmp_path / "a.lmdb", limit=5)
    assert limited.sizes(np.arange(5)).tolist() == first[:5].tolist() and reads["n"] == 40


def test_lmdb_size_index_of_a_read_only_archive_goes_to_the_cache_folder(tmp_path, monkeypatch):
    from crnn_lit.data.sources.base import cache_dir

    archive = tmp_path / "ro.lmdb"
    truth = _dtrb_archive(archive, 12)
    archive.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: let os.access answer as it does for every other user
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, *a, **kw: not (mode & os.W_OK and Path(path) == archive)
                            and real_access(path, mode, *a, **kw))
    reads = _counted_header_reads(monkeypatch)
    try:
        assert LmdbDataset(archive, size_cache=tmp_path / "cache").sizes(np.arange(12)).tolist() == \
            [list(s) for s in truth]
        assert sorted(os.listdir(archive)) == ["data.mdb", "lock.mdb"]
        assert len(list((tmp_path / "cache" / "sizes").glob("*.npz"))) == 1
        monkeypatch.setenv("CRNN_LIT_CACHE", str(tmp_path / "cache"))  # the same folder, named by the environment
        assert LmdbDataset(archive).size(11) == truth[11] and reads["n"] == 12
    finally:
        archive.chmod(0o755)
    monkeypatch.delenv("CRNN_LIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "crnn_lit" and cache_dir(tmp_path / "c") == tmp_path / "c"


def test_lmdb_size_index_of_a_changed_archive_is_rebuilt(tmp_path, monkeypatch):
    archive = tmp_path / "a.lmdb"
    _dtrb_archive(archive, 10)
    reads = _counted_header_reads(monkeypatch)
    assert LmdbDataset(archive).size(3) != (35, 16) and reads["n"] == 10
    close_env(archive)  # the archive changes: record 4 gets another image, same sample count
    env = lmdb.open(str(archive))
    with env.begin(write=True) as txn:
        txn.put(b"image-000000004", encode(np.zeros((16, 35), np.uint8)))
    env.close()
    assert LmdbDataset(archive).size(3) == (35, 16) and reads["n"] == 20  # stale index: read again
    assert LmdbDataset(archive).size(3) == (35, 16) and reads["n"] == 20  # ... and stored again
    (archive / "crnn_lit_sizes.npz").write_bytes(b"not an index")
    assert LmdbDataset(archive).size(3) == (35, 16) and reads["n"] == 30  # unreadable index: rebuilt


def test_batches_are_the_same_with_and_without_the_size_index(tmp_path, monkeypatch):
    from crnn_lit.data.batching import EpochSampler, WidthBatchSampler

    archive = tmp_path / "a.lmdb"
    _dtrb_archive(archive, 300)
    folder = FolderDataset(write_folder(tmp_path / "f", good_entries(300)))  # the same images as files

    def batches(source, rank):
        monkeypatch.setattr(WidthBatchSampler, "_world", staticmethod(lambda: (rank, 2)))
        sampler = EpochSampler(len(source), shuffle=True, seed=3)
        sampler.set_epoch(1)
        return list(WidthBatchSampler(sampler, 16, _prepared(source).widths, pool_batches=4))

    for rank in (0, 1):
        (archive / "crnn_lit_sizes.npz").unlink(missing_ok=True)
        without = batches(LmdbDataset(archive), rank)  # sizes read from the image headers
        assert (archive / "crnn_lit_sizes.npz").is_file()
        with_index = batches(LmdbDataset(archive), rank)
        assert with_index == without == batches(folder, rank)


def test_convert_resumes_after_an_interruption(tmp_path, broken, monkeypatch):
    folder = FolderDataset(broken)
    whole = cli.convert(folder, tmp_path / "whole.lmdb", "src", commit_every=4)
    calls = {"n": 0}
    original = FolderDataset.raw

    def flaky(self, i):
        calls["n"] += 1
        if calls["n"] == 19:
            raise KeyboardInterrupt
        return original(self, i)

    monkeypatch.setattr(FolderDataset, "raw", flaky)
    with pytest.raises(KeyboardInterrupt):
        cli.convert(folder, tmp_path / "part.lmdb", "src", commit_every=4)
    partial = LmdbDataset(tmp_path / "part.lmdb")
    assert 0 < len(partial) < whole["written"]
    monkeypatch.setattr(FolderDataset, "raw", original)
    resumed = cli.convert(folder, tmp_path / "part.lmdb", "src", commit_every=4)
    assert resumed["resumed"] and resumed["written"] == whole["written"] and resumed["skipped"] == whole["skipped"]
    a, b = LmdbDataset(tmp_path / "whole.lmdb"), LmdbDataset(tmp_path / "part.lmdb")
    assert [a.raw(i) for i in range(len(a))] == [b.raw(i) for i in range(len(b))]
    with pytest.raises(ValueError, match="already holds a conversion"):
        cli.convert(folder, tmp_path / "part.lmdb", "another source")


# --- CLI -----------------------------------------------------------------------------------------------------
def test_cli_convert_then_inspect(tmp_path, broken, capsys):
    out = tmp_path / "cli.lmdb"
    assert cli.main(["convert", "--format", "folder", "--input", str(broken), "--output", str(out),
                     "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert "samples written from 33 read" in text and "unreadable=2" in text and "not_utf8=1" in text
    assert cli.main(["inspect", str(broken), "--charset", "lowercase", "--decode"]) == 0
    text = capsys.readouterr().out
    for expected in ("33 samples; 27 usable", "label length", "width at height 32", "charset coverage",
                     "empty_label: 2", "empty_file: 1", "unreadable: 2", "bad/oov.png 'ßø!' (no character in the charset)",
                     "outside the charset"):
        assert expected in text, expected
    assert cli.main(["inspect", str(out)]) == 0
    assert "28 samples; 27 usable" in capsys.readouterr().out  # the converter keeps the oov label
    assert cli.main(["inspect", str(tmp_path / "nothing")]) == 2


# --- mixing --------------------------------------------------------------------------------------------------
class Numbers:
    """A source whose sample i has label str(i) (no images needed for index logic)."""

    def __init__(self, n, name="n"):
        self.n, self.name = n, name

    def __len__(self):
        return self.n

    def size(self, i):
        return (32 + i % 50, 32)

    def key(self, i):
        return f"{self.name}{i}"

    def label(self, i):
        return str(i)


def test_split_counts_sum_exactly():
    assert split_counts(10, [0.5, 0.5]) == [5, 5]
    assert split_counts(7, [1, 1, 1]) == [3, 2, 2]
    assert sum(split_counts(1001, [0.2, 0.3, 0.5])) == 1001


def test_mixed_source_draws_by_ratio_and_names_sources():
    mixed = MixedSource({"big": Numbers(1000, "b"), "small": Numbers(10, "s")}, {"big": 1, "small": 1})
    idx = mixed.epoch_indices(np.random.default_rng(0), 200)
    big, small = idx[idx < 1000], idx[idx >= 1000] - 1000
    assert len(big) == len(small) == 100
    assert len(set(big.tolist())) == 100  # no repeats while a source has fresh samples
    assert np.bincount(small, minlength=10).tolist() == [10] * 10  # whole passes over the small source
    assert mixed.key(1003) == "small:s3" and mixed.size(1003) == (35, 32)
    assert sizes_of(mixed, idx).tolist() == [list(mixed.size(i)) for i in idx]  # one call per source
    held = HoldoutSplit(mixed, "train", 0.5)
    assert sizes_of(held, np.arange(len(held))).tolist() == [list(held.size(i)) for i in range(len(held))]
    assert np.array_equal(idx, mixed.epoch_indices(np.random.default_rng(0), 200))
    plain = MixedSource({"a": Numbers(30), "b": Numbers(10)})  # no ratios: proportional (concatenation)
    assert plain.ratios == [0.75, 0.25] and len(plain) == 40
    with pytest.raises(ValueError, match="ratios must name exactly"):
        MixedSource({"a": Numbers(3)}, {"b": 1.0})


def test_holdout_split_is_disjoint_complete_and_stable():
    src = Numbers(2000)
    train, val = HoldoutSplit(src, "train", 0.1), HoldoutSplit(src, "val", 0.1)
    t, v = {train.key(i) for i in range(len(train))}, {val.key(i) for i in range(len(val))}
    assert not t & v and len(t | v) == 2000 and 150 < len(v) < 250
    assert v == {HoldoutSplit(src, "val", 0.1).key(i) for i in range(len(val))}


def test_holdout_split_by_group_keeps_each_scene_on_one_side():
    """group: keys n0…n1999 in scenes of ten consecutive numbers (n120…n129 is scene "12"); unmatched keys alone."""
    src = Numbers(2000)

    def keys(**kw) -> set[str]:
        split = HoldoutSplit(src, kw.pop("part", "val"), 0.1, **kw)
        return {split.key(i) for i in range(len(split))}

    t, v = keys(part="train", group=r"n(\d*?)\d"), keys(group=r"n(\d*?)\d")
    assert not t & v and len(t | v) == 2000 and 100 <= len(v) <= 300
    assert all({f"n{int(k[1:]) // 10 * 10 + d}" for d in range(10)} <= v for k in v)  # whole scenes
    assert v != keys()
    assert keys(group=r"x(\d+)") == keys()  # a pattern that matches no key: the crop-level split


def test_mixed_training_source_through_the_datamodule(tmp_path):
    from crnn_lit.data.datamodule import TextDataModule

    a = FolderDataset(write_folder(tmp_path / "a", good_entries(8, seed=1)))
    b = FolderDataset(write_folder(tmp_path / "b", good_entries(40, seed=2)))
    dm = TextDataModule(MixedSource({"a": a, "b": b}, {"a": 0.5, "b": 0.5}), b, LOWER, output_length,
                        preprocess=PREPROCESS, batch_size=8, eval_batch_size=16, num_workers=0, samples_per_epoch=32,
                        seed=0)
    keys = [k for batch in dm.train_dataloader() for k in batch.keys]
    assert len(keys) == 32
    assert sum(k.startswith("a:") for k in keys) == 16 == sum(k.startswith("b:") for k in keys)
    assert len({k for k in keys if k.startswith("a:")}) == 8  # two whole passes over the small set


def test_open_source_detects_formats(tmp_path, broken):
    assert isinstance(open_source(broken), FolderDataset)
    assert isinstance(open_source(write_synth90k(tmp_path / "s", 1)), Synth90k)
    with pytest.raises(ValueError, match="not a known dataset layout"):
        open_source(tmp_path)


def test_sources_satisfy_the_source_protocols(tmp_path):
    """Every source is a Source (len, getitem, size); the file-based ones are FileSources (key, label, raw)."""
    from corpus import good_entries, write_folder
    from crnn_lit.data.sources.base import FileSource, Source
    from crnn_lit.data.sources.folder import FolderDataset
    from crnn_lit.data.sources.mixed import HoldoutSplit, MixedSource
    from crnn_lit.data.sources.renderer import SyntheticWords, WordRenderer

    folder = FolderDataset(write_folder(tmp_path / "crops", good_entries(6)))
    split = HoldoutSplit(folder, fraction=0.5, part="train")
    from crnn_lit.config import PROJECT_ROOT

    data = PROJECT_ROOT / "data"
    rendered = SyntheticWords(WordRenderer(str(data / "words" / "english.txt"), str(data / "fonts"), PREPROCESS, seed=1), length=4)
    for source in (folder, split, MixedSource({"a": folder})):
        assert isinstance(source, FileSource), type(source).__name__
    assert isinstance(rendered, Source) and not isinstance(rendered, FileSource)
    assert not isinstance([1, 2], Source)
    assert folder.size(0) == folder[0].image.shape[1::-1]
