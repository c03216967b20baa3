"""Reading images of every mode as RGB, masks as booleans, and naming the file that fails."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fishcam_utils.data.images import (
    image_size,
    is_image_file,
    is_junk_file,
    load_mask,
    load_rgb,
    read_image,
    read_mask,
    resize_mask,
)
from fishcam_utils.errors import DataError


def _png_16bit_rgb(path: Path, pixels: np.ndarray) -> Path:
    """Write (H, W, 3) uint16 as a 48-bit PNG by hand (Pillow cannot write one)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    rgb = load_rgb(tmp_path / "g.png")
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray)


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, 0] = (200, 100, 50, 255)  # opaque: unchanged
    rgba[0, 1] = (200, 100, 50, 0)  # transparent: white
    rgba[0, 2] = (200, 100, 50, 128)  # half: a blend
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    rgb = load_rgb(tmp_path / "a.png").astype(int)
    assert rgb[0, 0].tolist() == [200, 100, 50]
    assert rgb[0, 1].tolist() == [255, 255, 255]
    expected = np.array([200, 100, 50]) * 128 / 255 + 255 * (1 - 128 / 255)
    assert np.abs(rgb[0, 2] - expected).max() <= 1


def test_palette_images_with_and_without_transparency(tmp_path):
    source = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    palette = Image.fromarray(source).convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_rgb(tmp_path / "p.png"), source)
    index_of_blue = palette.getpixel((1, 0))
    palette.save(tmp_path / "pt.png", transparency=index_of_blue)
    assert load_rgb(tmp_path / "pt.png")[0].tolist() == [[255, 0, 0], [255, 255, 255]]


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 1000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as image:
        assert image.mode.startswith("I")
    rgb = load_rgb(tmp_path / "g16.png")
    assert rgb[0, :, 0].tolist() == [0, 100, 255, round(1000 / 257)]


def test_sixteen_bit_rgb_keeps_its_colours(tmp_path):
    pixels = np.array([[[65535, 0, 32896], [257 * 10, 257 * 200, 257 * 30]]], dtype=np.uint16)
    rgb = load_rgb(_png_16bit_rgb(tmp_path / "c16.png", pixels))
    assert rgb.shape == (1, 2, 3)
    assert np.abs(rgb.astype(int) - pixels.astype(int) // 257).max() <= 1


def test_cmyk_jpeg_and_exif_orientation(tmp_path):
    Image.new("CMYK", (10, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    rgb = load_rgb(tmp_path / "c.jpg")
    assert rgb.shape == (4, 10, 3) and rgb[..., 0].mean() > 200 and rgb[..., 1].mean() < 60
    # A phone photo stored sideways with "rotate 90" in its EXIF comes out upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (10, 4), (10, 200, 10)).save(tmp_path / "rot.jpg", exif=exif)
    assert load_rgb(tmp_path / "rot.jpg").shape == (10, 4, 3)


def test_upper_case_extensions_count_and_clutter_does_not():
    assert is_image_file("A/FISH.JPG") and is_image_file("x.Png") and is_image_file("y.TIFF")
    assert not is_image_file("notes.txt") and not is_image_file("._fish.jpg")
    assert is_junk_file(".DS_Store") and is_junk_file("Thumbs.db") and is_junk_file("._fish.jpg")
    assert not is_junk_file("fish.jpg")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_broken_files_raise_an_error_naming_them(tmp_path, damage):
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / f"bad_{damage}.png"
    data = {"garbage": b"this is not a png" * 10, "truncated": good.read_bytes()[:400], "empty": b""}[damage]
    bad.write_bytes(data)
    with pytest.raises(DataError) as info:
        load_rgb(bad)
    assert str(bad) in str(info.value) and "delete it" in str(info.value)
    with pytest.raises(DataError, match="does not exist"):
        load_rgb(tmp_path / "missing.png")


def test_masks_read_as_booleans_from_any_encoding(tmp_path):
    pattern = np.zeros((4, 5), bool)
    pattern[1:3, 2:4] = True
    Image.fromarray(pattern.astype(np.uint8) * 255).save(tmp_path / "m255.png")
    Image.fromarray(pattern.astype(np.uint8)).save(tmp_path / "m1.png")
    Image.fromarray(np.stack([pattern.astype(np.uint8) * 255] * 3, -1)).save(tmp_path / "mrgb.png")
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "empty.png")
    for name in ("m255.png", "m1.png", "mrgb.png"):
        np.testing.assert_array_equal(load_mask(tmp_path / name), pattern)
    assert not load_mask(tmp_path / "empty.png").any()


def test_resizing_keeps_masks_binary_and_images_uint8(tmp_path):
    Image.fromarray(np.full((30, 40, 3), 77, np.uint8)).save(tmp_path / "i.png")
    assert image_size(tmp_path / "i.png") == (40, 30)
    image = read_image(tmp_path / "i.png", 16)
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8 and (image == 77).all()
    assert read_image(tmp_path / "i.png", (10, 20)).shape == (10, 20, 3)
    mask = np.zeros((30, 40), bool)
    mask[:, :20] = True
    small = resize_mask(mask, 8)
    assert small.dtype == bool and small[:, :4].all() and not small[:, 4:].any()
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", 8), small)


def test_channel_stats_match_numpy_in_chunks():
    from fishcam_utils.data.images import channel_stats

    images = np.random.default_rng(1).integers(0, 256, (37, 9, 11, 3), dtype=np.uint8)
    mean, std = channel_stats(images, chunk=5)
    flat = images.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(mean, flat.mean(0), atol=1e-12)
    np.testing.assert_allclose(std, flat.std(0), atol=1e-9)
    with pytest.raises(ValueError, match="shape"):
        channel_stats(images[..., 0])
