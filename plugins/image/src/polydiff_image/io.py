"""Image files: user inputs (PNG/JPEG paths or arrays) read, samples written as PNG and read back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch

MAX_PIXELS = 4096 * 4096   # larger inputs are refused before decoding (decompression bombs)


def open_rgb(path, field: str) -> np.ndarray:
    """float32 [H, W, 3] in [0, 1] from an image file, each bit depth scaled by its own maximum
    (16-bit grey 65535 is white), palettes expanded; a truncated file or one over MAX_PIXELS
    is one error naming ``field``, raised before any pixel is decoded or used."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise Image.DecompressionBombError(f"{img.width}x{img.height}")
                img.load()   # a truncated file fails here rather than leaving black rows
                if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):   # 16-bit grey (PNG)
                    grey = np.asarray(img, dtype=np.float32) / 65535.0
                    return np.repeat(grey[..., None].clip(0, 1), 3, axis=2)
                return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise polydiff.InvalidInputError(f"{field}: no such file {str(path)!r}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise polydiff.InvalidInputError(f"{field}: {str(path)!r} is refused: over the limit of {MAX_PIXELS:,} "
                                         "pixels (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise polydiff.InvalidInputError(f"{field}: cannot read {str(path)!r} as an image ({exc})") from None


def read_image(value, field: str) -> torch.Tensor:
    """An image as float [3, H, W] in [0, 1] from a path or an array (HxWx3/HxW uint8 or float
    in [0, 1], or 3xHxW); errors name ``field``."""
    if isinstance(value, (str, Path)):
        return torch.from_numpy(open_rgb(value, field)).permute(2, 0, 1).contiguous()
    array = torch.as_tensor(np.asarray(value))
    if array.dtype == torch.uint8:
        array = array.float() / 255.0
    array = array.float()
    if array.ndim == 2:
        array = array[None].expand(3, -1, -1)
    elif array.ndim == 3 and array.shape[-1] in (1, 3) and array.shape[0] not in (1, 3):
        array = array.permute(2, 0, 1)
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise polydiff.InvalidInputError(f"{field}: expected an HxWx3 or 3xHxW image, got shape {tuple(array.shape)}")
    if not torch.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise polydiff.InvalidInputError(f"{field}: pixel values must be in [0, 1] (or uint8)")
    return array.expand(3, -1, -1).contiguous()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [0, 1] -> HxWx3 uint8."""
    return (image.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def grid(images: list[torch.Tensor], cols: int = 8, pad: int = 2) -> np.ndarray:
    h, w = images[0].shape[1:]
    rows = -(-len(images) // cols)
    cols = min(cols, len(images))
    out = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), np.uint8) + 40
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = to_uint8(img)
    return out


def write(outputs, folder, request) -> list[Path]:
    """One PNG per sample, plus grid.png when there is more than one."""
    from PIL import Image

    folder = Path(folder)
    paths = []
    for i, image in enumerate(outputs):
        path = folder / f"{request.task}-{i:03d}.png"
        Image.fromarray(to_uint8(image)).save(path)
        paths.append(path)
    if len(outputs) > 1:
        Image.fromarray(grid(outputs)).save(folder / "grid.png")
        paths.append(folder / "grid.png")
    return paths


def read(files) -> list[torch.Tensor]:
    """The samples ``write`` saved, in order (the inverse of ``write``; grid.png is left out)."""
    samples = sorted(Path(f) for f in files if Path(f).suffix == ".png" and Path(f).name != "grid.png")
    return [read_image(path, path.name) for path in samples]


def picture(x: torch.Tensor) -> np.ndarray:
    """The first image of a model-space batch (noisy or not) as [H, W, 3] in [0, 1], for figures."""
    return ((x[0].float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
