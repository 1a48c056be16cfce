"""Draws the example masks and label images for spatial control, at the bundled content's size:
masks/left.png and masks/right.png (two halves with a soft 32 px seam), masks/sky.png and
masks/land.png (above and below the content's hill line), and masks/labels.png with
masks/style-labels.png (sky blue and land green; the style's upper and lower halves).
Run: python assets/make_masks.py"""

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).parent
SKY, LAND = (80, 160, 255), (40, 200, 60)


def save(array: np.ndarray, name: str) -> None:
    image = Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8))
    image.save(HERE / "masks" / name, optimize=True)


def main() -> None:
    with Image.open(HERE / "content.png") as content, Image.open(HERE / "style.png") as style:
        (w, h), (sw, sh) = content.size, style.size
    (HERE / "masks").mkdir(exist_ok=True)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    left = np.clip((w / 2 + 16 - x) / 32, 0, 1)            # 1 on the left, a 32 px ramp in the middle
    save(left, "left.png")
    save(1 - left, "right.png")
    hills = h * (0.55 + 0.08 * np.sin(x / w * 7))          # make_examples.py's hill line
    sky = np.clip((hills - y) / 4 + 0.5, 0, 1)            # a 4 px soft edge
    save(sky, "sky.png")
    save(1 - sky, "land.png")
    labels = np.where(sky[..., None] >= 0.5, SKY, LAND).astype(np.uint8)
    Image.fromarray(labels).save(HERE / "masks" / "labels.png", optimize=True)
    style_labels = np.where(np.arange(sh)[:, None, None] < sh / 2, SKY, LAND) * np.ones((sh, sw, 1))
    Image.fromarray(style_labels.astype(np.uint8)).save(HERE / "masks" / "style-labels.png", optimize=True)


if __name__ == "__main__":
    main()
