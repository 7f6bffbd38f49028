"""N_δ(l′) retrieval: every lexicon word within Levenshtein distance δ of a query, behind one interface.

The paper restricts lexicon-based decoding of large lexicons to N_δ(l′), the words within edit distance δ of the
lexicon-free result l′, and finds them with a BK-tree. Two fast exact implementations live here, beside the
paper's ``BKTree``; all three return the same set as a linear scan (tests check it on random lexicons,
``bench/decode_speed.py`` times them — the pure-Python BK-tree still visits about half of a 90k-word lexicon
per query at δ = 3, ~100× slower than the default, so decoders do not offer it):

* ``RapidfuzzIndex`` — words sorted by length; a query scans only the lengths within ±δ with rapidfuzz's
  bit-parallel Levenshtein (``process.cdist`` with ``score_cutoff=δ``). ``search_many`` sends all queries of one
  length in one call, which amortizes rapidfuzz's per-call conversion of the word list.
* ``SymDeleteIndex`` (default) — a symmetric-delete index (the idea behind SymSpell) stored as one sorted
  ``uint64`` array: hashed deletion variants, packed with the word id. Exact: every word within δ shares a
  deletion variant with the query (see the class docstring), and every hit is verified with the true distance.

All indexes work on word *ids* (positions in the list given at construction); results are sorted ``int64``
arrays of ids. ``nearest(query)`` returns the words at the smallest distance (for the "widen" fallback).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein


class CandidateIndex:
    """Exact N_δ retrieval over a fixed word list. Subclasses implement ``search``."""

    name = "base"

    def __init__(self, words: Sequence[str]):
        self.words = list(words)

    def __len__(self) -> int:
        return len(self.words)

    def search(self, query: str, delta: int) -> np.ndarray:
        """Sorted ids of the words ``w`` with ``Levenshtein(query, w) <= delta``."""
        raise NotImplementedError

    def search_many(self, queries: Sequence[str], delta: int) -> list[np.ndarray]:
        """``search`` for several queries (implementations may share work between them)."""
        return [self.search(q, delta) for q in queries]

    def nearest(self, query: str) -> tuple[int, np.ndarray]:
        """``(d, ids)``: the smallest distance from ``query`` to any word and the sorted ids at that distance."""
        if not self.words:
            return 0, np.zeros(0, np.int64)
        d = process.cdist([query], self.words, scorer=Levenshtein.distance, dtype=np.int32, workers=1)[0]
        best = int(d.min())
        return best, np.flatnonzero(d == best).astype(np.int64)


class RapidfuzzIndex(CandidateIndex):
    """Length-bounded scan with rapidfuzz: only words with ``|len(w) − len(q)| <= δ`` are compared."""

    name = "rapidfuzz"

    def __init__(self, words: Sequence[str]):
        super().__init__(words)
        lengths = np.array([len(w) for w in self.words], dtype=np.int64)
        self._order = np.argsort(lengths, kind="stable")
        self._sorted = [self.words[i] for i in self._order]
        self._sorted_lengths = lengths[self._order]

    def _range(self, length: int, delta: int) -> tuple[int, int]:
        lo = int(np.searchsorted(self._sorted_lengths, length - delta, side="left"))
        hi = int(np.searchsorted(self._sorted_lengths, length + delta, side="right"))
        return lo, hi

    def search(self, query: str, delta: int) -> np.ndarray:
        return self.search_many([query], delta)[0]

    def search_many(self, queries: Sequence[str], delta: int) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(queries)
        by_length: dict[int, list[int]] = {}
        for i, q in enumerate(queries):
            by_length.setdefault(len(q), []).append(i)
        for length, members in by_length.items():
            lo, hi = self._range(length, delta)
            if lo >= hi:
                continue
            dists = process.cdist([queries[i] for i in members], self._sorted[lo:hi], scorer=Levenshtein.distance,
                                  score_cutoff=delta, dtype=np.int32, workers=1)
            for row, i in enumerate(members):
                out[i] = np.sort(self._order[lo + np.flatnonzero(dists[row] <= delta)])
        return out


# --- symmetric delete -------------------------------------------------------------------------------------

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer (wrapping uint64 arithmetic): spreads the linear string hash over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


class SymDeleteIndex(CandidateIndex):
    """Symmetric-delete index for exact Levenshtein retrieval up to ``max_delta`` (k), packed in one array.

    Why it is exact. Let ``lev(w, q) <= k``. An optimal edit script turns both words into a common subsequence
    X by deleting ``x`` characters from w and ``y`` from q (substitutions delete on both sides), ``x, y <= k``
    and ``x − y = len(w) − len(q)``. Deleting the same extra characters of X from both sides keeps them equal,
    so the pair can be normalized: if ``len(w) >= len(q)``, w deletes exactly k and q deletes
    ``k − (len(w) − len(q))``; otherwise q deletes exactly k and w deletes ``dl = k − (len(q) − len(w)) < k``.
    This needs ``max(len(w), len(q)) >= k`` characters to delete — when both words have at most k letters
    their distance is at most k anyway, so those words are always returned. The index therefore stores, per
    word, its k-deletion variants (table ``dl = k``) and its ``dl``-deletion variants for ``dl < k``; a query
    looks up its 0..k-deletion variants in table k and its k-deletion variants in tables 0..k−1. Hits are a
    superset of N_k (deletion variants can match without an alignment, hashes can collide) and are verified
    with the exact distance, so the result is exactly N_δ for any ``δ <= k``.

    Storage: each variant is hashed (linear hash over positions, then a 64-bit mixer, salted with its table),
    and ``hash_high_bits << id_bits | word_id`` is kept in one sorted ``uint64`` array (≈ 11 M entries,
    ≈ 90 MB for the 87,623-word MJSynth lexicon at k = 3; built in a few seconds, vectorized per word length).
    A lookup is one ``searchsorted`` for all of a query's variants.
    """

    name = "symdelete"

    def __init__(self, words: Sequence[str], max_delta: int = 3, chunk_elements: int = 4_000_000):
        super().__init__(words)
        if max_delta < 0:
            raise ValueError(f"max_delta must be >= 0, got {max_delta}")
        self.max_delta = k = int(max_delta)
        n = len(self.words)
        self._id_bits = max(1, int(n - 1).bit_length()) if n > 1 else 1
        if self._id_bits > 40:
            raise ValueError("lexicon too large for the packed symmetric-delete index")
        self._id_mask = np.uint64((1 << self._id_bits) - 1)
        rng = np.random.default_rng(0x5EED)
        max_len = max((len(w) for w in self.words), default=0)
        # one random odd multiplier per position, per-length and per-table salts
        self._pos_mult = rng.integers(1, 2**63, size=max(max_len, 1) + 64, dtype=np.uint64) | np.uint64(1)
        self._len_salt = rng.integers(0, 2**63, size=max(max_len, 1) + 64, dtype=np.uint64)
        self._table_salt = rng.integers(0, 2**63, size=k + 1, dtype=np.uint64)
        self._combos: dict[tuple[int, int], np.ndarray] = {}
        self._plans: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        lengths = np.array([len(w) for w in self.words], dtype=np.int64)
        self._short = np.flatnonzero(lengths <= k).astype(np.int64)  # always within k of a query of <= k letters
        parts: list[np.ndarray] = []
        for length in np.unique(lengths):
            length = int(length)
            ids = np.flatnonzero(lengths == length)
            codes = self._codes([self.words[i] for i in ids], length)
            tables = [dl for dl in range(k) if length - dl >= 1]
            if length > k:
                tables.append(k)
            for dl in tables:
                keep = self._keep_positions(length, dl)
                step = max(1, chunk_elements // max(1, keep.size))
                for s in range(0, len(ids), step):
                    h = self._hash(codes[s:s + step], keep, length - dl, dl)  # (n_words, n_variants)
                    packed = (h >> np.uint64(self._id_bits)) << np.uint64(self._id_bits)
                    packed |= ids[s:s + step, None].astype(np.uint64)
                    parts.append(packed.ravel())
        # Sorted, not deduplicated: a word listed twice under one variant is harmless (results are unique'd).
        self._keys = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)
        # Directory on the top bits of the hash (≈ 2–4 entries per bucket): a lookup is two array reads, then a
        # short scan of its bucket, instead of a binary search through ~10 M keys.
        self._dir_bits = int(min(26, max(1, self._keys.size.bit_length() - 2)))
        buckets = np.bincount((self._keys >> np.uint64(64 - self._dir_bits)).astype(np.int64),
                              minlength=1 << self._dir_bits)
        self._offsets = np.zeros(buckets.size + 1, np.int64 if self._keys.size >= 2**31 else np.int32)
        np.cumsum(buckets, out=self._offsets[1:])

    @property
    def entries(self) -> int:
        return int(self._keys.size)

    @property
    def nbytes(self) -> int:
        return int(self._keys.nbytes + self._offsets.nbytes)

    def _keep_positions(self, length: int, deletions: int) -> np.ndarray:
        """All ways to keep ``length − deletions`` of ``length`` positions, as a (n_variants, kept) array."""
        key = (length, deletions)
        keep = self._combos.get(key)
        if keep is None:
            keep = np.array(list(combinations(range(length), length - deletions)), dtype=np.intp)
            keep = keep.reshape(-1, length - deletions)
            self._combos[key] = keep
        return keep

    @staticmethod
    def _codes(words: Sequence[str], length: int) -> np.ndarray:
        if not words:
            return np.zeros((0, length), np.uint64)
        flat = np.frombuffer("".join(words).encode("utf-32-le"), dtype=np.uint32)
        return flat.reshape(len(words), length).astype(np.uint64) + np.uint64(1)

    def _hash(self, codes: np.ndarray, keep: np.ndarray, kept: int, table: int) -> np.ndarray:
        """Hashes of the variants ``codes[:, keep]`` (kept characters), salted with their length and table."""
        if kept == 0:
            base = np.zeros((codes.shape[0], keep.shape[0]), np.uint64)
        else:
            base = (codes[:, keep] * self._pos_mult[:kept]).sum(axis=2, dtype=np.uint64)
        return _mix(base + self._len_salt[kept] + self._table_salt[table])

    def _lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Word ids stored under any of ``hashes`` (with repetitions)."""
        bucket = (hashes >> np.uint64(64 - self._dir_bits)).astype(np.intp)
        lo, hi = self._offsets[bucket], self._offsets[bucket + 1]
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        # every entry of every hit bucket, then keep those whose stored hash bits equal the query's
        ends = np.cumsum(counts)
        positions = np.arange(total) + np.repeat(lo - (ends - counts), counts)
        entries = self._keys[positions]
        shift = np.uint64(self._id_bits)
        match = (entries >> shift) == np.repeat(hashes >> shift, counts)
        return (entries[match] & self._id_mask).astype(np.int64)

    def _query_plan(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """For queries of ``length`` letters: per-variant position weights (V, length) and salts (V,).

        A query's variant hashes are then ``mix((weights * codes).sum(1) + salts)`` — one vectorized step for
        all of its deletion variants (0..k deletions looked up in table k, and k deletions in tables 0..k−1).
        """
        plan = self._plans.get(length)
        if plan is not None:
            return plan
        k = self.max_delta
        weights, salts = [], []

        def add(deletions: int, table: int) -> None:
            keep = self._keep_positions(length, deletions)
            kept = length - deletions
            w = np.zeros((keep.shape[0], length), np.uint64)
            if kept:
                np.put_along_axis(w, keep, self._pos_mult[:kept][None, :], axis=1)
            weights.append(w)
            salts.append(np.full(keep.shape[0], self._len_salt[kept] + self._table_salt[table], np.uint64))

        for j in range(min(k, length - 1) + 1):  # table k: words of length + k − j letters, j <= k
            add(j, k)
        if length > k:  # tables dl < k: words shorter than the query, which deletes exactly k
            for dl in range(k):
                add(k, dl)
        plan = (np.concatenate(weights) if weights else np.zeros((0, length), np.uint64),
                np.concatenate(salts) if salts else np.zeros(0, np.uint64))
        self._plans[length] = plan
        return plan

    def raw_candidates(self, query: str) -> np.ndarray:
        """Unverified candidate ids (a superset of N_k, sorted, unique) — exposed for benchmarks and tests."""
        weights, salts = self._query_plan(len(query))
        if weights.shape[0]:
            codes = self._codes([query], len(query))[0]
            ids = self._lookup(_mix((weights * codes).sum(axis=1, dtype=np.uint64) + salts))
        else:
            ids = np.zeros(0, np.int64)
        if len(query) <= self.max_delta:
            ids = np.concatenate([ids, self._short])
        if ids.size <= 1:
            return ids
        ids.sort()
        return ids[np.concatenate(([True], ids[1:] != ids[:-1]))]

    def search(self, query: str, delta: int) -> np.ndarray:
        if delta > self.max_delta:
            raise ValueError(f"this index was built for delta <= {self.max_delta}, asked for {delta}")
        ids = self.raw_candidates(query)
        if ids.size == 0:
            return ids
        words = self.words
        dists = process.cdist([query], [words[i] for i in ids.tolist()], scorer=Levenshtein.distance,
                              score_cutoff=delta, dtype=np.int32, workers=1)[0]
        return ids[dists <= delta]


class BKTree(CandidateIndex):
    """Burkhard–Keller tree under the Levenshtein metric (the paper's choice).

    Each node holds a word and children keyed by their distance to it; by the triangle inequality a query only
    descends into children whose key lies within ``[d − δ, d + δ]`` of its own distance ``d`` to the node.
    Duplicate words (distance 0) share a node.
    """

    name = "bktree"

    def __init__(self, words: Sequence[str]):
        super().__init__(words)
        self._node_ids: list[list[int]] = []  # word ids at each node (duplicates share a node)
        self._children: list[dict[int, int]] = []
        for i, w in enumerate(self.words):
            self._insert(i, w)

    def _insert(self, wid: int, word: str) -> None:
        if not self._node_ids:
            self._node_ids.append([wid])
            self._children.append({})
            return
        node = 0
        dist = Levenshtein.distance
        while True:
            d = dist(word, self.words[self._node_ids[node][0]])
            if d == 0:
                self._node_ids[node].append(wid)
                return
            child = self._children[node].get(d)
            if child is None:
                self._children[node][d] = len(self._node_ids)
                self._node_ids.append([wid])
                self._children.append({})
                return
            node = child

    def search(self, query: str, delta: int) -> np.ndarray:
        return self._search(query, delta)[0]

    def _search(self, query: str, delta: int) -> tuple[np.ndarray, int]:
        """Ids within ``delta`` and the number of nodes visited."""
        if not self._node_ids:
            return np.zeros(0, np.int64), 0
        found: list[int] = []
        stack = [0]
        visited = 0
        dist, words, node_ids, children = Levenshtein.distance, self.words, self._node_ids, self._children
        while stack:
            node = stack.pop()
            visited += 1
            ids = node_ids[node]
            d = dist(query, words[ids[0]])
            if d <= delta:
                found.extend(ids)
            for key, child in children[node].items():
                if d - delta <= key <= d + delta:
                    stack.append(child)
        found.sort()
        return np.array(found, dtype=np.int64), visited

    def visited_nodes(self, query: str, delta: int) -> int:
        """How many nodes a query visits (to report how much of the lexicon the tree really prunes)."""
        return self._search(query, delta)[1]


INDEXES = {cls.name: cls for cls in (SymDeleteIndex, RapidfuzzIndex)}


def build_index(kind: str, words: Sequence[str], delta: int) -> CandidateIndex:
    """The retrieval implementation named ``kind`` (``symdelete`` or ``rapidfuzz``)."""
    if kind not in INDEXES:
        raise ValueError(f"unknown candidate retrieval {kind!r}; choose one of {sorted(INDEXES)}")
    if kind == "symdelete":
        return SymDeleteIndex(words, max_delta=delta)
    return INDEXES[kind](words)
