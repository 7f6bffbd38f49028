"""Error sheets: a PNG of a column's most confident errors, what the network saw beside the label and the reading."""

from __future__ import annotations

from pathlib import Path

import torch

from crnn_lit.preprocess import to_pixels


def error_sheet(errors: list[tuple[str, str, str, float]], images: dict[str, torch.Tensor], path: Path,
                limit: int = 60, font: Path | None = None, lines: bool = False, show=to_pixels) -> None:
    """A PNG of the most confident errors first: what the network saw (its input, height-normalized), the label,
    the reading and its confidence — the first thing to look at, and what tells the renderer work what fails.
    ``lines``: text lines, each image whole (wrapped into rows) above its label and reading (``_line_sheet``).
    ``show``: network input → RGB pixels (``Preprocess.to_pixels``: a BGR model's input shown in RGB)."""
    from PIL import Image, ImageDraw, ImageFont

    shown = sorted(errors, key=lambda e: -e[3])[:limit]
    if lines:
        _line_sheet(shown, images, path, font, show)
        return
    scale, cell_w, text_w = 2, 240, 260
    height = max((images[e[0]].shape[-2] for e in shown), default=0)  # the model's input height
    row_h = max(height * scale + 8, 48)  # room for the two text lines
    sheet = Image.new("RGB", (cell_w * scale // 2 * 2 + text_w, max(1, len(shown)) * row_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    face = ImageFont.truetype(str(font), 16) if font is not None and font.is_file() else ImageFont.load_default()
    for i, (key, label, reading, confidence) in enumerate(shown):
        image = _rgb(show(images[key]))
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
        sheet.paste(image.crop((0, 0, min(image.width, cell_w * scale // 2 * 2), image.height)), (0, i * row_h))
        x = cell_w * scale // 2 * 2 + 8
        draw.text((x, i * row_h + 4), f"{label}  →  {reading or '∅'}", fill=(0, 0, 0), font=face)
        draw.text((x, i * row_h + 26), f"{confidence:.2f}  {key[-28:]}", fill=(110, 110, 110), font=face)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


def _rgb(pixels):
    """H×W×1 or H×W×3 uint8 → an RGB PIL image."""
    from PIL import Image

    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).convert("RGB")


def _line_sheet(shown: list[tuple[str, str, str, float]], images: dict[str, torch.Tensor], path: Path,
                font: Path | None, show=to_pixels, width: int = 1200) -> None:
    """The error sheet of text lines: each line's network input at its own scale, cut into rows ``width`` px wide
    when longer (a line is never squeezed nor cropped), then the label and the reading one above the other in a
    monospaced face, so a missing space or a wrong character stands under its counterpart, and the position of
    the first difference marked with ``^``."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(str(font), 14) if font is not None and font.is_file() else ImageFont.load_default()
    text_h, blocks = 18, []
    for key, label, reading, confidence in shown:
        pixels = _rgb(show(images[key]))
        rows = [pixels.crop((x, 0, min(x + width, pixels.width), pixels.height))
                for x in range(0, pixels.width, width)]
        first = next((i for i, (a, b) in enumerate(zip(label, reading)) if a != b), min(len(label), len(reading)))
        texts = [f"label {label}", f"read  {reading or '∅'}", f"      {' ' * first}^  {confidence:.2f}  {key[-40:]}"]
        block = Image.new("RGB", (width + 16, sum(r.height + 2 for r in rows) + len(texts) * text_h + 10),
                          (255, 255, 255))
        draw, y = ImageDraw.Draw(block), 4
        for row in rows:
            block.paste(row, (8, y))
            y += row.height + 2
        for i, text in enumerate(texts):
            draw.text((8, y + i * text_h), text, fill=(0, 0, 0) if i < 2 else (110, 110, 110), font=face)
        blocks.append(block)
    sheet = Image.new("RGB", (width + 16, max(1, sum(b.height for b in blocks))), (255, 255, 255))
    y = 0
    for block in blocks:
        sheet.paste(block, (0, y))
        ImageDraw.Draw(sheet).line((0, y + block.height - 1, width + 16, y + block.height - 1), fill=(200, 200, 200))
        y += block.height
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
