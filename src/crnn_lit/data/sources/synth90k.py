"""Synth90k / MJSynth (Jaderberg et al. 2014) read as distributed.

Layout: ``<root>/annotation_{train,val,test}.txt`` with lines ``./2697/6/466_MONIKER_49537.jpg 49537`` and
``<root>/lexicon.txt`` (line i = word i). The label is the word in the file name.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch.utils.data import Dataset

from crnn_lit.data.sample import BadSample, Sample
from crnn_lit.data.sources.image_io import decode_image

log = logging.getLogger(__name__)

# MJSynth crops are 32 px high and tight around the word; their width grows with the word. Reading 7 M JPEG
# headers just to bucket by width would take longer than an epoch, so the sampler uses this estimate
# (px per character at height 32, plus margins), and the collate pads to the true width.
_PX_PER_CHAR, _MARGIN_PX = 16, 8


class Synth90k(Dataset):
    def __init__(self, root: str, split: str = "train", limit: int | None = None):
        self.root = Path(root)
        annotation = self.root / f"annotation_{split}.txt"
        if not annotation.is_file():
            raise FileNotFoundError(
                f"data.root={root!s} does not look like the Synth90k archive: {annotation.name} is missing "
                "(expected the folder 90kDICT32px with annotation_train.txt, annotation_val.txt and lexicon.txt)")
        self.paths: list[str] = []
        self.labels: list[str] = []
        malformed = 0
        with open(annotation, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) != 2 or parts[0].count("_") < 2:
                    malformed += line.strip() != ""
                    continue
                self.paths.append(parts[0])
                self.labels.append(Path(parts[0]).stem.split("_")[1])
                if limit is not None and len(self.paths) >= limit:
                    break
        if malformed:
            log.warning("%s: skipped %d malformed annotation lines", annotation, malformed)

    def __len__(self) -> int:
        return len(self.paths)

    def size(self, index: int) -> tuple[int, int]:
        return _PX_PER_CHAR * len(self.labels[index]) + _MARGIN_PX, 32

    def __getitem__(self, index: int) -> Sample:
        key = self.paths[index]
        path = self.root / key
        if not path.is_file():
            raise BadSample("missing_file", key)
        return Sample(decode_image(path, key), self.labels[index], key)
