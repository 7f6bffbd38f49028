"""Tiny datasets written by the tests: folders, Synth90k trees, LMDB archives, and a corpus of broken samples."""

from __future__ import annotations

import io
from pathlib import Path

import lmdb
import numpy as np
from PIL import Image

WORDS = ["moniker", "paper", "crnn", "lstm", "alpha", "beta", "gamma", "delta", "text", "word", "scene", "read"]


def word_image(word: str, seed: int = 0, height: int = 32, channels: int = 1) -> np.ndarray:
    """A noisy uint8 image about as wide as ``word`` would be at ``height`` px."""
    rng = np.random.default_rng(seed)
    shape = (height, max(16, 12 * len(word) * height // 32)) + ((channels,) if channels > 1 else ())
    return rng.integers(0, 255, shape, dtype=np.uint8)


def encode(array: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kw)
    return buf.getvalue()


def write_folder(root: Path, entries: list[tuple[str, bytes | None, str]], extra_lines: list[bytes] = ()) -> Path:
    """``entries``: (relative path, file bytes or None = do not create, label); labels.tsv lists them all."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for rel, data, label in entries:
        if data is not None:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        lines.append(f"{rel}\t{label}".encode())
    (root / "labels.tsv").write_bytes(b"\n".join([*lines, *extra_lines]) + b"\n")
    return root


def good_entries(n: int, prefix: str = "images/ok", seed: int = 0) -> list[tuple[str, bytes, str]]:
    out = []
    for i in range(n):
        word = WORDS[i % len(WORDS)]
        fmt = "JPEG" if i % 2 else "PNG"
        data = encode(word_image(word, seed + i, channels=3 if i % 3 == 0 else 1), fmt)
        out.append((f"{prefix}{i}.{fmt.lower().replace('jpeg', 'jpg')}", data, word.upper() if i % 4 == 0 else word))
    return out


# path → what must happen to it (a Rejected reason, "ok", or "index:<reason>" for lines skipped at load time)
BROKEN_EXPECTED = {
    "bad/zero.png": "empty_file",
    "bad/truncated.jpg": "unreadable",
    "bad/not_an_image.png": "unreadable",
    "bad/one_pixel.png": "bad_image",
    "bad/rgba.png": "ok",
    "bad/deep16.png": "ok",
    "bad/huge_width.png": "ok",
    "bad/empty_label.png": "empty_label",
    "bad/oov.png": "out_of_charset",
}


def broken_entries() -> tuple[list[tuple[str, bytes | None, str]], list[bytes]]:
    """Every kind of broken sample we promise to survive, plus lines that the index reader must skip."""
    jpeg = encode(word_image("truncated", 1, channels=3), "JPEG", quality=90)
    rgba = np.zeros((30, 90, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[5:25, 10:80, :3] = 20
    deep = (np.linspace(0, 65535, 32 * 100).reshape(32, 100)).astype(np.uint16)
    entries = [
        ("bad/zero.png", b"", "zero"),
        ("bad/truncated.jpg", jpeg[: len(jpeg) // 2], "truncated"),
        ("bad/not_an_image.png", b"this is not an image at all\n" * 4, "text"),
        ("bad/one_pixel.png", encode(np.zeros((1, 1), np.uint8)), "dot"),
        ("bad/rgba.png", encode(rgba), "alpha"),
        ("bad/deep16.png", encode(deep), "deep"),
        ("bad/huge_width.png", encode(word_image("x", 2, height=32)[:, :1].repeat(20000, axis=1)), "wide"),
        ("bad/empty_label.png", encode(word_image("empty", 3)), ""),
        ("bad/oov.png", encode(word_image("héllo", 4)), "ßø!"),  # nothing left in [0-9a-z] (no accent to fold): dropped by either oov policy
        ("bad/missing.png", None, "missing"),  # listed, never written
    ]
    extra = [b"bad/no_tab_line.png label-without-a-tab", b"bad/latin1.png\tcaf\xe9"]  # no tab; not UTF-8
    return entries, extra


def write_broken_corpus(root: Path, good: int = 24) -> Path:
    entries, extra = broken_entries()
    return write_folder(root, good_entries(good) + entries, extra)


def write_synth90k(root: Path, per_word: int = 4) -> Path:
    """A tiny tree in the Synth90k archive layout (annotation files + lexicon + images)."""
    (root / "1" / "1").mkdir(parents=True)
    words = WORDS[:8]
    (root / "lexicon.txt").write_text("\n".join(words) + "\n")
    lines = []
    for i, word in enumerate(words * per_word):
        rel = f"./1/1/{i}_{word.upper()}_{words.index(word)}.jpg"
        (root / rel).write_bytes(encode(word_image(word, i), "JPEG"))
        lines.append(f"{rel} {words.index(word)}")
    for split in ("train", "val", "test"):
        (root / f"annotation_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def write_dtrb_lmdb(path: Path, samples: list[tuple[bytes, str]]) -> Path:
    """An archive exactly as DTRB's create_lmdb_dataset writes it: num-samples, image-%09d, label-%09d only."""
    path.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for i, (image, label) in enumerate(samples, start=1):
            txn.put(b"image-%09d" % i, image)
            txn.put(b"label-%09d" % i, label.encode())
        txn.put(b"num-samples", str(len(samples)).encode())
    env.close()
    return path


def write_lmdb_tree(root: Path, n: int = 16) -> Path:
    """DTRB's data_lmdb_release layout in miniature: training/MJ/MJ_train, training/ST, validation."""
    def samples(seed):
        return [(data, label) for _, data, label in good_entries(n, seed=seed)]

    write_dtrb_lmdb(root / "training" / "MJ" / "MJ_train", samples(0))
    write_dtrb_lmdb(root / "training" / "ST", samples(100))
    write_dtrb_lmdb(root / "validation", samples(200))
    return root


def write_real_train(root: Path, n: int = 20) -> Path:
    """../shared/data/real_train in miniature: iiit5k/, svt/, ic15/ folders with labels.tsv."""
    for k, name in enumerate(("iiit5k", "svt", "ic15")):
        write_folder(root / name, good_entries(n, prefix="images/", seed=1000 * k))
    return root
