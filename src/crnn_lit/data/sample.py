"""The unit every data source yields: one word image and its transcription."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Sample:
    # uint8, H×W (grayscale), H×W×3 (RGB) or H×W×4 (RGBA; composited onto white later); None = not decoded
    # (the inspector judges labels from the index alone unless asked to decode)
    image: np.ndarray | None
    label: str
    key: str = ""  # where it came from (path, LMDB index, render index) — for error messages and predictions


class BadSample(Exception):
    """A source could not produce sample ``key`` (unreadable image, missing record, …); it is skipped and counted."""

    def __init__(self, reason: str, key: str, detail: str = ""):
        super().__init__(f"{key}: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.key = key
        self.detail = detail
