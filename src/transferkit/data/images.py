"""Robust image decoding: any common file becomes a bounded RGB image, or a clear reason why not."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
MAX_SIDE = 1024  # long side kept after decoding; every backbone here takes far less
MAX_PIXELS = 200_000_000  # refuse larger images before decoding them (about 800 MB as RGBA)


class ImageDecodeError(Exception):
    """One image could not be decoded; ``reason`` says why in a few words."""

    def __init__(self, path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def load_image(path, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS, name: str | None = None,
               gray: bool = False) -> Image.Image:
    """Decode ``path`` (a file, or a binary file object such as an upload) to an RGB image whose long side is at most
    ``max_side``.

    EXIF orientation is applied; grayscale, palette, 16-bit, CMYK and transparent images become RGB, with
    transparency composited onto white. With ``gray``, an opaque grayscale image stays one channel (mode L), for a
    reader that prepares the three equal channels of its RGB once (``onnx_runtime.prepare_image``). Raises
    :class:`ImageDecodeError` naming the file and the reason.
    """
    path = Path(path) if isinstance(path, (str, os.PathLike)) else path
    label = name or path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                w, h = opened.size
                if w * h > max_pixels:
                    raise ImageDecodeError(label, f"too large to decode safely ({w}x{h} pixels; at most "
                                                  f"{max_pixels / 1e6:.0f} megapixels)")
                if opened.format == "JPEG":
                    opened.draft("RGB", (max_side, max_side))  # decode JPEGs at reduced size: much faster
                opened.load()
                img = to_rgb(ImageOps.exif_transpose(opened), gray)
    except ImageDecodeError:
        raise
    except FileNotFoundError:
        raise ImageDecodeError(label, "file not found") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(label, "not an image file PIL can read") from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(label, f"too large to decode safely ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise ImageDecodeError(label, f"corrupt or truncated image ({exc})") from None
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def as_image(item, max_side: int = MAX_SIDE, gray: bool = False) -> Image.Image:
    """An in-memory image (a PIL image, or a numpy array: HxW gray or HxWxC uint8 with 1, 3 or 4 channels) as a
    bounded RGB image (an opaque grayscale one stays L with ``gray``, as in :func:`load_image`);
    :class:`ImageDecodeError` says why one cannot be used."""
    if isinstance(item, Image.Image):
        img = item
    elif isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise ImageDecodeError(_name(item), f"an array of {item.dtype}; images as arrays are uint8 (0-255)")
        if item.ndim == 3 and item.shape[-1] == 1:
            item = item[..., 0]
        if not (item.ndim == 2 or (item.ndim == 3 and item.shape[-1] in (3, 4))):
            raise ImageDecodeError(_name(item), f"an array of shape {item.shape}; expected height x width (x 3 or 4)")
        img = Image.fromarray(item)
    else:
        raise ImageDecodeError(_name(item), f"a {type(item).__name__}, not an image path, PIL image or array")
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageDecodeError(_name(item), f"too large to use safely ({w}x{h} pixels)")
    img = to_rgb(img, gray)
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def _name(item) -> str:
    if isinstance(item, np.ndarray):
        return f"<array {'x'.join(map(str, item.shape))}>"
    if isinstance(item, Image.Image):
        return f"<image {item.size[0]}x{item.size[1]}>"
    return f"<{type(item).__name__}>"


def to_rgb(img: Image.Image, gray: bool = False) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparency goes onto a white background. With ``gray``, an opaque
    grayscale image becomes 8-bit L instead: the one channel RGB would repeat three times."""
    if img.mode == "RGB" or (gray and img.mode == "L"):
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        plain = Image.fromarray(scaled.round().astype(np.uint8), "L")
        return plain if gray else plain.convert("RGB")
    if gray and img.mode == "1":
        return img.convert("L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
