"""Draws the bundled example images (no third-party pictures): a small landscape as the content
and a swirling, brush-like pattern as the style. Run: python assets/make_examples.py"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).parent


def content(size=(512, 384)) -> Image.Image:
    w, h = size
    y = np.linspace(0, 1, h)[:, None, None]
    sky = (1 - y) * np.array([90, 150, 230]) + y * np.array([250, 215, 170])
    img = Image.fromarray(np.broadcast_to(sky, (h, w, 3)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse([w * 0.68, h * 0.12, w * 0.82, h * 0.31], fill=(255, 236, 150))
    hills = [(0, h * 0.62)] + [(x, h * (0.55 + 0.08 * np.sin(x / w * 7))) for x in range(0, w + 1, 8)]
    d.polygon(hills + [(w, h), (0, h)], fill=(70, 130, 60))
    d.polygon([(0, h * 0.8), (w * 0.45, h * 0.7), (w, h * 0.85), (w, h), (0, h)], fill=(45, 95, 45))
    d.rectangle([w * 0.2, h * 0.52, w * 0.38, h * 0.74], fill=(200, 70, 55))
    d.polygon([(w * 0.18, h * 0.53), (w * 0.29, h * 0.40), (w * 0.40, h * 0.53)], fill=(90, 50, 40))
    d.rectangle([w * 0.27, h * 0.63, w * 0.31, h * 0.74], fill=(70, 40, 30))
    d.rectangle([w * 0.22, h * 0.57, w * 0.26, h * 0.62], fill=(250, 240, 190))
    for x0 in (0.55, 0.62, 0.9):
        d.rectangle([w * x0, h * 0.55, w * x0 + 6, h * 0.68], fill=(80, 55, 35))
        d.ellipse([w * x0 - 18, h * 0.43, w * x0 + 24, h * 0.58], fill=(35, 110, 50))
    return img.filter(ImageFilter.SMOOTH)


def style(size=(384, 384), seed=1) -> Image.Image:
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    angle = 6 * np.sin(3 * xx + 2 * np.cos(4 * yy)) + 4 * np.cos(5 * yy - 3 * xx)
    bands = 0.5 + 0.5 * np.sin(14 * (xx * np.cos(angle) + yy * np.sin(angle)))
    palette = np.array([[20, 40, 110], [40, 90, 180], [240, 200, 60], [250, 245, 210], [30, 30, 60]])
    t = np.clip(bands * 0.8 + 0.2 * (0.5 + 0.5 * np.sin(9 * xx * yy * 10)), 0, 0.999) * (len(palette) - 1)
    lo = np.floor(t).astype(int)
    frac = (t - lo)[..., None]
    rgb = palette[lo] * (1 - frac) + palette[lo + 1] * frac
    img = Image.fromarray(rgb.astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(700):  # short strokes, like a brush
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        a = angle[int(y) % h, int(x) % w]
        length = rng.uniform(6, 18)
        colour = tuple(int(c) for c in palette[rng.integers(0, len(palette))])
        d.line([x, y, x + length * np.cos(a), y + length * np.sin(a)], fill=colour, width=4)
    return img.filter(ImageFilter.SMOOTH_MORE)


def overview(images, height=240, gap=8) -> Image.Image:
    """The inputs side by side, for the README."""
    scaled = [im.resize((round(im.width * height / im.height), height), Image.Resampling.LANCZOS) for im in images]
    sheet = Image.new("RGB", (sum(im.width for im in scaled) + gap * (len(scaled) - 1), height), "white")
    x = 0
    for im in scaled:
        sheet.paste(im, (x, 0))
        x += im.width + gap
    return sheet


def main() -> None:
    images = [content(), style(), style((384, 384), seed=7).transpose(Image.Transpose.ROTATE_90)]
    for image, name in zip(images, ("content.png", "style.png", "style2.png")):
        image.save(HERE / name, optimize=True)
    (HERE.parent / "docs").mkdir(exist_ok=True)
    overview(images[:2]).save(HERE.parent / "docs" / "example-inputs.png", optimize=True)


if __name__ == "__main__":
    main()
