"""Image files in and out.

Inside the library an image is a float32 array in [0, 1], RGB, shape (H, W, 3). Loading turns every
odd file a user may have (EXIF-rotated, grey, RGBA, palette, CMYK, 16-bit) into that, and refuses
what is not an image with a one-line `StyleError`. Saving is atomic: a half-written file never
appears under the final name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import StyleError
from .files import check_readable, check_writable, same_file, user_file

MAX_PIXELS = 64_000_000  # 8000 x 8000; larger inputs are refused before they are decoded
# A mask's pixel is grey when its R, G and B are this close. JPEG keeps a grey picture grey (its colour
# planes stay constant: the spread measured 0 levels at quality 30 to 95), so this allows a faint tint,
# not a colour: the studio's red brush is 180 levels apart.
GREY_TOLERANCE = 24 / 255
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS, background: int = 255,
               still: bool = False) -> np.ndarray:
    """Reads an image file as float32 RGB in [0, 1], honouring EXIF orientation.

    Transparent images are composited over white (what a viewer shows), or the grey level
    `background`; 16-bit greyscale keeps its precision instead of being clipped to 8 bits. An
    animated image is read as its first frame, or refused with `still` (a mask or a label image,
    where a frame chosen for the user would be a guess). Pipes, devices and folders are refused
    before they are opened (reading a FIFO would never end).
    """
    path = check_readable(path)
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise StyleError(
                    f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the "
                    f"limit of {max_pixels / 1e6:.0f} megapixels")
            frames = getattr(img, "n_frames", 1)
            if still and frames > 1 and img.format != "MPO":  # MPO: a camera's JPEG and its preview
                raise StyleError(f"{path}: an animated image ({frames} frames); a mask or label image must "
                                 f"be one picture: save the frame you mean as a PNG")
            img.load()
            return _to_rgb_float(ImageOps.exif_transpose(img), background)
    except StyleError:
        raise
    except Image.DecompressionBombError as e:
        raise StyleError(f"{path}: refused as a decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise StyleError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise StyleError(f"{path}: damaged or truncated image ({e})") from None


def load_mask(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A mask file as float32 (H, W) in [0, 1]: its grey level, white 1; transparent pixels count as
    black (a painted layer's unpainted part is no part of the mask).

    A mask is greyscale: a coloured one (pixels whose R, G and B are more than GREY_TOLERANCE apart)
    is refused, since its grey level would weigh a colour by its luminance (pure red, 30%) without a
    word; colour-coded regions are label images (`regions.label_regions`). An animated image is refused.
    """
    rgb = load_image(path, max_pixels, background=0, still=True).astype(np.float64)  # float64: a grey stays exact
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    if spread.max() > GREY_TOLERANCE:
        y, x = np.unravel_index(int(spread.argmax()), spread.shape)
        colour = "#" + "".join(f"{v:02x}" for v in to_uint8(rgb[y, x]))
        raise StyleError(f"{path}: a mask must be greyscale (white where its style goes, black where not), "
                         f"but it has colours ({colour} at x={x}, y={y}, {np.mean(spread > GREY_TOLERANCE):.1%} "
                         f"of it); for colour-coded regions give label images: `content_labels` and "
                         f"`style_labels`")
    return np.clip(rgb @ [0.299, 0.587, 0.114], 0.0, 1.0).astype(np.float32)


def _to_rgb_float(img: Image.Image, background: int = 255) -> np.ndarray:
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        grey = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if grey.max() > 255 or img.mode.startswith("I;16") else 255.0
        grey = np.clip(grey / peak, 0.0, 1.0).astype(np.float32)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        grey = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        matte = Image.new("RGBA", rgba.size, (background,) * 3 + (255,))
        img = Image.alpha_composite(matte, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0)


def resize(image: np.ndarray, height: int, width: int,
           region: tuple[slice, slice] | None = None) -> np.ndarray:
    """Resamples an (H, W, 3) float image to (height, width) with an antialiased Lanczos filter.

    With `region` (rows, cols of the output), only that part of the output is made, with the values
    of the full result's crop (to float rounding): large mode upsamples one tile at a time this way.
    """
    if image.shape[:2] == (height, width):
        return image[region or ...].astype(np.float32, copy=False)
    rows, cols = region or (slice(0, height), slice(0, width))
    sy, sx = image.shape[0] / height, image.shape[1] / width
    box = (cols.start * sx, rows.start * sy, cols.stop * sx, rows.stop * sy)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], np.float32), mode="F")
                   .resize((cols.stop - cols.start, rows.stop - rows.start), Image.Resampling.LANCZOS,
                           box=box))
        for c in range(image.shape[2])
    ]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0).astype(np.float32)


def fit_longest_side(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """(H, W) scaled so that the longer side is `size`, keeping the aspect ratio."""
    height, width = shape
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_longest(image: np.ndarray, size: int) -> np.ndarray:
    return resize(image, *fit_longest_side(image.shape[:2], size))


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def check_output_path(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = (),
                      formats: tuple[str, ...] = SAVE_FORMATS) -> Path:
    """Refuses an output path that cannot be written (`files.check_writable`), has none of the
    `formats` suffixes, or would overwrite one of the inputs (the same file under another name too)."""
    path = Path(path)
    if path.name.lower() in formats:  # ".png" is a hidden file's name, with no suffix
        raise StyleError(f"{path}: the output needs a name before its suffix "
                         f"({path.parent / ('out' + path.name)}, say)")
    if path.suffix.lower() not in formats:
        raise StyleError(f"{path}: output must end in one of {', '.join(formats)}")
    check_writable(path)
    for given in inputs:
        if same_file(given, path):  # the same name, or another link to the same file
            raise StyleError(f"{path}: the output would overwrite the input {given}")
    return path


def save_image(path: str | os.PathLike, image: np.ndarray,
               text: Mapping[str, object] | None = None) -> Path:
    """Writes the image atomically; PNG files carry `text` as tEXt/iTXt chunks (values as JSON)."""
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise StyleError(f"{path}: output must end in one of {', '.join(SAVE_FORMATS)}")
    pil = Image.fromarray(to_uint8(image), mode="RGB")
    options: dict = {}
    if fmt == "PNG" and text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_itxt(key, value if isinstance(value, str) else json.dumps(value, default=str))
        options["pnginfo"] = info
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = 95
    with user_file(path) as tmp:
        pil.save(tmp, format=fmt, **options)
    return path


def read_png_text(path: str | os.PathLike) -> dict[str, str]:
    """The text chunks of a PNG, as the studio wrote them."""
    with Image.open(path) as img:
        img.load()
        return dict(getattr(img, "text", {}))
