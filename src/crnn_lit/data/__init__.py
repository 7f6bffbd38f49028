"""Data: sources (renderer, Synth90k, LMDB, folders, mixtures), the label policy and image pipeline, batching,
the Lightning DataModule, and the ``python -m crnn_lit.data`` converter / inspector."""

import os

# albumentations 2 asks PyPI for a newer version when imported; training must not depend on the network
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
