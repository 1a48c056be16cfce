"""Loading odd and bad images, and saving atomically with the settings inside."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from style_core.errors import StyleError
from style_core.images import (check_output_path, load_image, read_png_text, resize_longest,
                               save_image)


def _gradient(h=20, w=30):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 128)], axis=2).astype(np.uint8)


def test_rgb_png_round_trip(tmp_path):
    Image.fromarray(_gradient()).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.dtype == np.float32 and img.shape == (20, 30, 3)
    np.testing.assert_allclose(img, _gradient() / 255.0, atol=1e-6)


def test_missing_folder_and_text_file(tmp_path):
    with pytest.raises(StyleError, match="no such file"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "notes.jpg").write_text("this is not a picture")
    with pytest.raises(StyleError, match="not an image file"):
        load_image(tmp_path / "notes.jpg")
    with pytest.raises(StyleError, match="is a folder"):
        load_image(tmp_path)


def test_truncated_jpeg(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(tmp_path / "x.jpg")
    data = (tmp_path / "x.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(StyleError, match="damaged or truncated"):
        load_image(tmp_path / "cut.jpg")


def _png_with_claimed_size(path, width, height):
    """A tiny valid PNG whose header claims width x height (a decompression bomb's disguise)."""
    raw = zlib.compress(b"\x00" * 4)

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    _png_with_claimed_size(tmp_path / "bomb.png", 50_000, 50_000)
    with pytest.raises(StyleError, match="refused as a decompression bomb"):
        load_image(tmp_path / "bomb.png")
    _png_with_claimed_size(tmp_path / "big.png", 9000, 9000)
    with pytest.raises(StyleError, match="81 megapixels, over the limit of 64"):
        load_image(tmp_path / "big.png")


def test_grey_rgba_palette_cmyk_and_16bit(tmp_path):
    g = _gradient()
    Image.fromarray(g[..., 0]).save(tmp_path / "grey.png")
    grey = load_image(tmp_path / "grey.png")
    assert grey.shape == (20, 30, 3) and np.allclose(grey[..., 0], grey[..., 2])
    np.testing.assert_allclose(grey[..., 1], g[..., 0] / 255.0, atol=1e-6)

    rgba = np.dstack([g, np.full(g.shape[:2], 0, np.uint8)])
    rgba[:10, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    img = load_image(tmp_path / "rgba.png")
    np.testing.assert_allclose(img[:10], g[:10] / 255.0, atol=1e-6)
    np.testing.assert_allclose(img[10:], 1.0)  # transparent -> white

    Image.fromarray(g).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(tmp_path / "pal.png")
    assert load_image(tmp_path / "pal.png").shape == (20, 30, 3)

    Image.fromarray(g).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    cmyk = load_image(tmp_path / "cmyk.jpg")
    assert np.abs(cmyk - g / 255.0).mean() < 0.03

    sixteen = (np.arange(20 * 30).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "16.png")
    img16 = load_image(tmp_path / "16.png")
    np.testing.assert_allclose(img16[..., 0], sixteen / 65535.0, atol=1e-6)  # not clipped at 8 bits
    assert img16.max() > 0.9


def test_exif_rotation_is_honoured(tmp_path):
    g = _gradient(20, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    Image.fromarray(g).save(tmp_path / "rot.jpg", exif=exif, quality=100)
    img = load_image(tmp_path / "rot.jpg")
    assert img.shape == (30, 20, 3)
    # After a clockwise turn the stored left column (red 0) becomes the top row.
    assert img[0, :, 0].mean() < 0.1 and img[-1, :, 0].mean() > 0.9


def test_one_by_one_image_loads(tmp_path):
    Image.new("RGB", (1, 1), (255, 0, 0)).save(tmp_path / "dot.png")
    np.testing.assert_allclose(load_image(tmp_path / "dot.png")[0, 0], [1, 0, 0])


def test_resize_longest_keeps_aspect():
    assert resize_longest(np.zeros((300, 600, 3), np.float32), 64).shape == (32, 64, 3)


def test_save_png_keeps_settings_in_text_chunks(tmp_path):
    path = save_image(tmp_path / "out.png", np.full((4, 5, 3), 0.5, np.float32),
                      {"style_core": {"settings": {"size": 4}, "final_losses": {"total": 1.5}}})
    text = read_png_text(path)
    assert '"final_losses": {"total": 1.5}' in text["style_core"]
    assert Image.open(path).size == (5, 4)


def test_failed_save_leaves_nothing_behind_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"the user's earlier result")

    def explode(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(Image.Image, "save", explode)
    with pytest.raises(StyleError, match="cannot write .*out.png: disk full; nothing was written there"):
        save_image(target, np.zeros((4, 4, 3), np.float32))
    assert target.read_bytes() == b"the user's earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_output_path_checks(tmp_path):
    (tmp_path / "in.png").write_bytes(b"x")
    with pytest.raises(StyleError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.png")
    with pytest.raises(StyleError, match="overwrite the input"):
        check_output_path(tmp_path / "in.png", (tmp_path / "in.png",))
    with pytest.raises(StyleError, match="overwrite the input"):
        check_output_path(tmp_path / "." / "in.png", (str(tmp_path / "in.png"),))
    with pytest.raises(StyleError, match="must end in"):
        check_output_path(tmp_path / "out.gif")
    assert check_output_path(tmp_path / "out.png", (tmp_path / "in.png",)) == tmp_path / "out.png"
