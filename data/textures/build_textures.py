"""Rebuild the background photographs in this folder from scikit-image's bundled sample images.

    pip download --no-deps scikit-image==0.26.0 -d /tmp/sk && unzip -q /tmp/sk/*.whl 'skimage/data/*' -d /tmp/sk
    python data/textures/build_textures.py /tmp/sk/skimage/data

Only images whose scikit-image documentation states CC0 or public domain are used (see README.md). Each is
converted to 8-bit grayscale (the renderer uses luminance only), downscaled to at most 512 px on its long
side and stored as JPEG (quality 90), so the whole folder stays well under 1 MB.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

SOURCES = (  # file in skimage/data -> licence as stated in skimage.data's docstrings (v0.26)
    ("astronaut.png", "public domain (NASA)"),
    ("brick.png", "CC0 (CC0Textures, Bricks25)"),
    ("camera.png", "CC0 (photographer Lav Varshney)"),
    ("cell.png", "CC0"),
    ("chelsea.png", "CC0 (photographer Stefan van der Walt)"),
    ("coffee.png", "CC0 (photographer Rachel Michetti)"),
    ("coins.png", "no known copyright restrictions (Brooklyn Museum)"),
    ("grass.png", "CC0 (DeviantArt linolafett, Grass 01)"),
    ("gravel.png", "CC0 (CC0Textures, Gravel04)"),
    ("hubble_deep_field.jpg", "public domain (NASA)"),
    ("rocket.jpg", "public domain (SpaceX)"),
)


def main(src_dir: str) -> None:
    out_dir = Path(__file__).resolve().parent
    for name, _ in SOURCES:
        img = Image.open(Path(src_dir) / name).convert("L")
        img.thumbnail((512, 512), Image.Resampling.LANCZOS)
        img.save(out_dir / (Path(name).stem + ".jpg"), quality=90)


if __name__ == "__main__":
    main(sys.argv[1])
