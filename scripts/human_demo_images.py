"""Make the shipped human demo study's stimuli: 12 pictures of coloured shapes, their table and features.

Writes ``src/oddoneout/studies/human_demo/``: ``images/<item>.png`` (4 colours x 3 shapes, 160 x 160
pixels), ``stimuli.csv`` (``item_id``, ``caption``, ``media_path``) and ``features.csv`` (one-hot
colour and shape: what the demo's simulated agent judges by). Needs Pillow.

Usage::

    python scripts/human_demo_images.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "oddoneout" / "studies" / "human_demo"
COLOURS = {"red": (214, 39, 40), "blue": (31, 119, 180), "green": (44, 160, 44), "yellow": (230, 190, 20)}
SHAPES = ("circle", "square", "triangle")
SIZE, SCALE = 160, 4  # drawn 4x larger, then scaled down: smooth edges


def draw(shape: str, colour: tuple[int, int, int]) -> Image.Image:
    big = SIZE * SCALE
    image = Image.new("RGB", (big, big), (255, 255, 255))
    pen = ImageDraw.Draw(image)
    margin = big // 8
    box = (margin, margin, big - margin, big - margin)
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    else:
        pen.polygon([(big // 2, margin), (big - margin, big - margin), (margin, big - margin)], fill=colour)
    return image.resize((SIZE, SIZE), Image.LANCZOS)


def main() -> None:
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    rows, features = [], []
    for colour, rgb in COLOURS.items():
        for shape in SHAPES:
            item = f"{colour}_{shape}"
            draw(shape, rgb).save(OUT / "images" / f"{item}.png", optimize=True)
            rows.append({"item_id": item, "caption": f"a {colour} {shape}", "media_path": f"{item}.png"})
            features.append(
                {
                    "item_id": item,
                    **{f"colour_{c}": float(c == colour) for c in COLOURS},
                    **{f"shape_{s}": float(s == shape) for s in SHAPES},
                }  # fmt: skip
            )
    pd.DataFrame(rows).to_csv(OUT / "stimuli.csv", index=False)
    pd.DataFrame(features).to_csv(OUT / "features.csv", index=False)
    print(f"wrote {len(rows)} pictures, stimuli.csv and features.csv to {OUT}")


if __name__ == "__main__":
    main()
