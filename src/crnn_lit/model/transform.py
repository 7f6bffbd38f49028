"""The transformation stage before the CNN (DTRB's four stages: transformation → features → sequence → prediction).

``NoTransform`` is the paper's pipeline: images reach the CNN as preprocessed. ``TPS`` is the thin-plate-spline
spatial transformer that DTRB (Baek et al. 2019) takes from RARE (Shi et al. 2016), itself a spatial transformer
(Jaderberg et al. 2015): it rectifies curved and perspective text and learns end to end from the CTC loss alone.

Coordinates are normalized, (x, y) ∈ [−1, 1]² over the image, so everything below is independent of pixel sizes.

* **Fiducial points.** C (F × 2) sit in the rectified image: F/2 evenly spaced along its top edge (y = −1), F/2
  along its bottom edge (y = +1), left to right. A small CNN (the localization network) predicts C′, where those
  points lie in the input image.
* **The thin-plate spline** f maps rectified points to input points with f(c_k) = c′_k and minimal bending:
  f(p) = a₀ + a_x·x + a_y·y + Σ_k w_k U(‖p − c_k‖), U(r) = r² log r, with Σ w_k = 0 and Σ w_k c_k = 0. Its
  coefficients T = (a₀, a_x, a_y, w₁ … w_F) ((F+3) × 2) solve Δ_C T = [C′; 0₃ₓ₂], where Δ_C has the rows
  [1, c_i, R_i·] (i = 1 … F, R_ij = U(‖c_i − c_j‖)), then [0, 0, 0, Cᵀ] (two rows) and [0, 0, 0, 1ᵀ]. Δ_C depends on
  C only, so Δ_C⁻¹ is computed once; T = Δ_C⁻¹[C′; 0] is linear in C′ and differentiable.
* **Grid and sampling.** Each output pixel centre p gives the row p̂ = [1, x, y, U(‖p − c_1‖) … U(‖p − c_F‖)];
  f(p) = p̂ T is where it reads the input, bilinearly (``F.grid_sample``, borders repeated).

**Width.** DTRB rectifies every image to a fixed 32 × 100. Here ``rectified_size=None`` (the default) keeps the
input's own size: the spline's coefficients depend only on the fiducial points, so the same warp is sampled on a
grid as wide as the input, the rectified image keeps its pixel density and the frame count stays
T = ``backbone.output_length(W)`` — a 400-pixel word keeps its 101 frames instead of 26, and a short word is not
stretched. The price: F/2 control points per edge whatever the width, so a long word is warped more coarsely
(raise ``fiducials`` for long lines), and in a training batch padded to its widest image the grid spans the padding.
``rectified_size=[h, w]`` is DTRB's fixed output (``w`` wide whatever the input width; then T is that of ``w``:
``output_width``), which imported DTRB models use.

**Initialisation.** The last layer of the localization network starts with zero weights and C as its bias, so
C′ = C: the spline is the identity and, with ``align_corners=False``, the first forward pass reproduces its input up
to float rounding — a TPS stage can be added to trained weights (``init_from``) without changing what they read.
(DTRB initialises C′ to a slanted quadrilateral instead, RARE's Fig. 6a; ``align_corners=True`` is DTRB's sampling
convention, a (W−1)/W zoom about the centre at C′ = C, kept for imported models.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-6  # U(r) = r² log(r + ε) on the grid, as DTRB's grids: imported models read exactly (r ≥ 1/H > 0 anyway)


class NoTransform(nn.Module):
    """The paper's pipeline: no transformation stage (no weights, so checkpoints without one load unchanged)."""

    def __init__(self, in_channels: int = 1):
        super().__init__()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def output_width(self, width: int) -> int:
        return width


def fiducial_points(count: int) -> torch.Tensor:
    """C (count × 2, float64): count/2 points along the top edge, then count/2 along the bottom, left to right."""
    x = torch.linspace(-1.0, 1.0, count // 2, dtype=torch.float64)
    top = torch.stack([x, torch.full_like(x, -1.0)], 1)
    return torch.cat([top, torch.stack([x, torch.full_like(x, 1.0)], 1)])


def tps_system_inverse(points: torch.Tensor) -> torch.Tensor:
    """Δ_C⁻¹ ((F+3) × (F+3)) for fiducial points C (F × 2), in float64."""
    n = points.shape[0]
    r = torch.cdist(points, points)
    kernel = r.pow(2) * torch.log(torch.where(r > 0, r, torch.ones_like(r)))  # U(0) = 0
    system = torch.zeros(n + 3, n + 3, dtype=points.dtype)
    system[:n, 0] = 1
    system[:n, 1:3] = points
    system[:n, 3:] = kernel
    system[n:n + 2, 3:] = points.T
    system[n + 2, 3:] = 1
    return torch.linalg.inv(system)


def spline_basis(p: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The rows p̂ = [1, x, y, U(‖p − c_1‖) … U(‖p − c_F‖)] of points p (n × 2): n × (F+3)."""
    r = (p.unsqueeze(1) - points.unsqueeze(0)).pow(2).sum(-1).sqrt()  # (n, F); no cdist: it has no ONNX op
    return torch.cat([torch.ones_like(p[:, :1]), p, r.pow(2) * torch.log(r + _EPS)], 1)


def grid_basis(height, width, points: torch.Tensor) -> torch.Tensor:
    """``spline_basis`` of every output pixel centre, row-major ((height·width) × (F+3)).

    ``height``/``width`` may be traced sizes: an exported model builds the grid for each input width."""
    ys = (torch.arange(height, dtype=points.dtype, device=points.device) * 2 + 1) / height - 1
    xs = (torch.arange(width, dtype=points.dtype, device=points.device) * 2 + 1) / width - 1
    p = torch.stack([xs.view(1, -1).expand(height, width), ys.view(-1, 1).expand(height, width)], -1)
    return spline_basis(p.reshape(-1, 2), points)


class TPS(nn.Module):
    """Thin-plate-spline rectification (see the module docstring): images (N, C, H, W) → (N, C, h, w), where
    (h, w) = ``rectified_size`` or the input's (H, W).

    ``fiducials``: F, even, ≥ 4. ``channels``: the localization network's convolutions (3×3, BN, ReLU, a 2×2
    max-pool between two of them, global average pooling after the last; DTRB's: 64-128-256-512), then
    ``Linear(channels[-1] → hidden)``, ReLU, ``Linear(hidden → 2F)``.
    """

    def __init__(self, in_channels: int = 1, fiducials: int = 20, rectified_size: Sequence[int] | None = None,
                 channels: Sequence[int] = (64, 128, 256, 512), hidden: int = 256, align_corners: bool = False):
        super().__init__()
        if fiducials < 4 or fiducials % 2:
            raise ValueError(f"transform.fiducials must be even and at least 4, got {fiducials}")
        if rectified_size is not None and (len(rectified_size) != 2 or min(rectified_size) < 1):
            raise ValueError(f"transform.rectified_size is null or [height, width], got {list(rectified_size)}")
        if not channels:
            raise ValueError("transform.channels needs at least one convolution")
        self.fiducials = fiducials
        self.rectified_size = tuple(int(s) for s in rectified_size) if rectified_size is not None else None
        self.align_corners = align_corners
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip([in_channels, *channels[:-1]], channels)):
            layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            layers.append(nn.MaxPool2d(2, 2) if i < len(channels) - 1 else nn.AdaptiveAvgPool2d(1))
        self.localization = nn.Sequential(*layers)
        self.regressor = nn.Sequential(nn.Linear(channels[-1], hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, 2 * fiducials))
        points = fiducial_points(fiducials)
        nn.init.zeros_(self.regressor[2].weight)  # C′ = C: the identity warp
        with torch.no_grad():
            self.regressor[2].bias.copy_(points.flatten())
        # derived from F alone: not saved, so a checkpoint holds only learned weights
        self.register_buffer("points", points.float(), persistent=False)
        # only Δ_C⁻¹'s first F columns meet C′: the right-hand side [C′; 0] ends in three zero rows
        self.register_buffer("inverse", tps_system_inverse(points)[:, :fiducials].float(), persistent=False)

    def output_width(self, width: int) -> int:
        return self.rectified_size[1] if self.rectified_size is not None else width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n = images.shape[0]
        height, width = self.rectified_size if self.rectified_size is not None else images.shape[-2:]
        moved = self.regressor(self.localization(images).flatten(1)).view(n, self.fiducials, 2)  # C′
        # f(p) = p + p̂ Δ_C⁻¹[C′ − C; 0]: the same spline (Δ_C⁻¹[C; 0] is the identity map), but the displacement
        # is what float32 computes, so C′ = C gives the input's own pixel centres exactly
        coefficients = self.inverse @ (moved.float() - self.points)  # (N, F+3, 2)
        basis = grid_basis(height, width, self.points)  # (h·w, F+3); columns 1-2 are p
        grid = (basis[:, 1:3] + basis @ coefficients).view(n, height, width, 2)
        return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border",
                             align_corners=self.align_corners)
