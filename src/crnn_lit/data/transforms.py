"""Image transforms: colour handling, height normalization (the paper rescales every image to one height),
and conversion to the network's input tensor. Augmentation pipelines are albumentations objects built by Hydra
from the ``augment`` config group and applied to training images only, before resizing."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch

WidthPolicy = Literal["bucketed", "keep_ratio", "fixed"]


class Resize:
    """Scale an image to ``height`` and pick its width by policy.

    ``bucketed`` and ``keep_ratio`` keep the aspect ratio, width clamped to [min_width, max_width] (the two differ
    only in how batches are formed); ``fixed`` stretches everything to ``fixed_width`` (DTRB's 32×100).
    """

    def __init__(self, height: int, min_width: int, max_width: int, policy: WidthPolicy, fixed_width: int):
        if policy not in ("bucketed", "keep_ratio", "fixed"):
            raise ValueError(f"data.width_policy must be bucketed, keep_ratio or fixed, got {policy!r}")
        if not 0 < min_width <= max_width:
            raise ValueError(f"need 0 < data.min_width <= data.max_width, got {min_width}, {max_width}")
        self.height, self.min_width, self.max_width = height, min_width, max_width
        self.policy, self.fixed_width = policy, fixed_width

    def width_for(self, width: int, height: int) -> int:
        """Width after resizing an image of the given size (what the batch sampler groups by)."""
        if self.policy == "fixed":
            return self.fixed_width
        scaled = round(width * self.height / max(height, 1))
        return int(min(max(scaled, self.min_width), self.max_width))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        new_w = self.width_for(w, h)
        if (h, w) == (self.height, new_w):
            return image
        shrinking = new_w * self.height < w * h
        return cv2.resize(image, (new_w, self.height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 H×W or H×W×{1,3,4} → H×W (channels=1) or H×W×3 (channels=3). Alpha is composited onto white."""
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (image[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if channels == 1:
        return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if channels == 3:
        return image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    raise ValueError(f"data.channels must be 1 or 3, got {channels}")


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 H×W[×C] → float C×H×W in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(image))
    t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    return t.float().div_(127.5).sub_(1.0)
