"""Reference N_δ retrievals, kept as test oracles (and timed by bench/decode_speed.py), not shipped in the package:
a linear scan (the definition) and the paper's BK-tree."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

from crnn_lit.transcription.candidates import CandidateIndex


class LinearScan(CandidateIndex):
    """The reference: the distance to every word, one by one."""

    name = "linear"

    def search(self, query: str, delta: int) -> np.ndarray:
        return np.array([i for i, w in enumerate(self.words) if Levenshtein.distance(query, w) <= delta],
                        dtype=np.int64)


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
