"""Robust decoding: every odd kind of image file becomes bounded RGB, or a reason naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from transferkit.data import ImageDecodeError, load_image


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), "red")
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    img.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").size == (20, 40)


@pytest.mark.parametrize(
    "mode, make",
    [
        ("L", lambda: Image.new("L", (8, 8), 128)),
        ("1", lambda: Image.new("1", (8, 8), 1)),
        ("P", lambda: Image.new("RGB", (8, 8), "blue").convert("P")),
        ("CMYK", lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0))),
        ("I;16", lambda: Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)),
    ],
)
def test_every_mode_becomes_rgb(tmp_path, mode, make):
    path = tmp_path / f"img.{'tif' if mode in ('CMYK', 'I;16') else 'png'}"
    make().save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (8, 8)


@pytest.mark.parametrize("suffix, make, kept", [
    ("png", lambda: Image.new("L", (8, 8), 128), "L"),
    ("jpg", lambda: Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4), "L"),
    ("png", lambda: Image.new("1", (8, 8), 1), "L"),
    ("tif", lambda: Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000), "L"),
    ("png", lambda: Image.new("LA", (8, 8), (128, 0)), "RGB"),  # transparency still goes onto white, in RGB
    ("png", lambda: Image.new("RGB", (8, 8), "blue").convert("P"), "RGB"),
    ("jpg", lambda: Image.new("RGB", (8, 8), "blue"), "RGB"),
])
def test_a_reader_that_asks_keeps_opaque_grayscale_as_one_channel_with_rgbs_values(tmp_path, suffix, make, kept):
    path = tmp_path / f"img.{suffix}"
    make().save(path)
    out = load_image(path, gray=True)
    assert out.mode == kept
    assert np.array_equal(np.asarray(out.convert("RGB")), np.asarray(load_image(path)))


def test_sixteen_bit_keeps_its_contrast(tmp_path):
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(tmp_path / "deep.png")
    arr = np.asarray(load_image(tmp_path / "deep.png"))
    assert arr.min() == 0 and arr.max() == 255


def test_transparency_goes_onto_white(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    rgba.save(tmp_path / "alpha.png")
    arr = np.asarray(load_image(tmp_path / "alpha.png"))
    assert tuple(arr[1, 1]) == (255, 255, 255) and tuple(arr[0, 0]) == (255, 0, 0)


def test_palette_with_transparency_goes_onto_white(tmp_path):
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    assert tuple(np.asarray(load_image(tmp_path / "pal.png"))[2, 2]) == (255, 255, 255)


def test_huge_images_are_bounded(tmp_path):
    Image.new("RGB", (4000, 300), "green").save(tmp_path / "wide.png")
    assert load_image(tmp_path / "wide.png").size == (1024, 77)


@pytest.mark.parametrize(
    "content, reason",
    [(b"this is not an image", "not an image"), (None, "corrupt or truncated")],
)
def test_unreadable_files_name_the_path_and_reason(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    if content is None:
        Image.new("RGB", (64, 64), "red").save(path)
        content = path.read_bytes()[:60]  # truncated
    path.write_bytes(content)
    with pytest.raises(ImageDecodeError, match=reason) as info:
        load_image(path)
    assert info.value.path == path and str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError, match="file not found"):
        load_image(tmp_path / "nope.jpg")
