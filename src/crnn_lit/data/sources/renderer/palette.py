"""Text and background colours measured on real crops: measuring one crop, clustering many, and the shipped
palette (``data/colors``) the renderer draws from (``style.p_real_colors``)."""

from __future__ import annotations

import bisect
import random
from pathlib import Path

import cv2
import numpy as np

from crnn_lit.data.sources.renderer.plan import luma, with_luma

Pair = tuple[tuple[float, float, float], tuple[float, float, float]]  # (text RGB, background RGB), 0..1


def crop_colours(rgb: np.ndarray, min_border_share: float = 0.7) -> Pair | None:
    """(text, background) median colours of one crop (HxWx3 uint8), or None when they cannot be told apart.

    Otsu's threshold on the luminance splits the pixels in two; the class holding at least
    ``min_border_share`` of the outermost ring of pixels is the background (annotated boxes hug the word, so
    the ring is mostly background). A class of under 5 % of the pixels, or a crop whose ring is split, gives None.
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if gray.shape[0] < 4 or gray.shape[1] < 4 or int(gray.max()) - int(gray.min()) < 16:
        return None
    _, bright = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = bright.astype(bool)
    ring = np.concatenate([bright[0], bright[-1], bright[1:-1, 0], bright[1:-1, -1]])
    share = ring.mean()
    if max(share, 1.0 - share) < min_border_share:
        return None
    background = bright if share > 0.5 else ~bright
    if not 0.05 <= 1.0 - background.mean() <= 0.95:
        return None
    fg = np.median(rgb[~background], axis=0) / 255.0
    bg = np.median(rgb[background], axis=0) / 255.0
    return tuple(map(float, fg)), tuple(map(float, bg))  # type: ignore[return-value]


def cluster_pairs(pairs: np.ndarray, k: int, seed: int = 0, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """k-means of (N, 6) colour pairs (k-means++ start, fixed seed): centres (k, 6) and their shares of N."""
    rng = np.random.default_rng(seed)
    centres = [pairs[rng.integers(len(pairs))]]
    for _ in range(1, k):
        d = np.min([((pairs - c) ** 2).sum(1) for c in centres], axis=0)
        centres.append(pairs[rng.choice(len(pairs), p=d / d.sum())])
    centres = np.array(centres)
    for _ in range(iterations):
        nearest = ((pairs[:, None, :] - centres[None]) ** 2).sum(2).argmin(1)
        moved = np.array([pairs[nearest == j].mean(0) if (nearest == j).any() else centres[j] for j in range(k)])
        if np.allclose(moved, centres):
            break
        centres = moved
    counts = np.bincount(nearest, minlength=k)
    keep = counts > 0
    return centres[keep], counts[keep] / counts.sum()


def load_palette(path: str | Path) -> tuple[list[Pair], list[float]]:
    """``fg_r fg_g fg_b bg_r bg_g bg_b share`` rows (tab-separated, ``#`` comments): the pairs and their CDF."""
    pairs, shares = [], []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        values = [float(v) for v in line.split("\t")]
        if len(values) != 7 or not all(0.0 <= v <= 1.0 for v in values[:6]) or values[6] <= 0:
            raise ValueError(f"{path}:{n}: expected 6 colour channels in 0..1 and a positive share, got {line!r}")
        pairs.append((tuple(values[:3]), tuple(values[3:6])))
        shares.append(values[6])
    if not pairs:
        raise ValueError(f"no colour pairs in {path}")
    cdf = np.cumsum(shares) / sum(shares)
    return pairs, [float(c) for c in cdf]


def draw_pair(r: random.Random, pairs: list[Pair], cdf: list[float], gap: float, jitter: float = 0.08) -> Pair:
    """A palette pair, each luminance jittered by up to ±``jitter``, then moved apart (about their middle, text
    keeping its side) until they differ by ``gap``: the renderer's contrast guarantee."""
    fg, bg = pairs[min(bisect.bisect_right(cdf, r.random()), len(pairs) - 1)]
    y_fg = min(max(luma(fg) + jitter * (2.0 * r.random() - 1.0), 0.0), 1.0)
    y_bg = min(max(luma(bg) + jitter * (2.0 * r.random() - 1.0), 0.0), 1.0)
    if abs(y_bg - y_fg) < gap:
        side = 1.0 if luma(bg) >= luma(fg) else -1.0  # the real pair's polarity
        mid = min(max((y_fg + y_bg) / 2.0, gap / 2.0), 1.0 - gap / 2.0)
        y_fg, y_bg = mid - side * gap / 2.0, mid + side * gap / 2.0
    return with_luma(fg, y_fg), with_luma(bg, y_bg)
