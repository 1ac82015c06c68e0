"""Clip files. Inputs: an animated GIF, a folder of frame images, a contact-sheet PNG, a .npy
array, an MP4 (when PyAV is installed) or an in-memory array. Outputs, per sample: an animated
GIF to watch, a contact-sheet PNG (the frames side by side, lossless: what ``read`` reads back)
and, with PyAV, an MP4. Every file is written to a temporary name and renamed into place, so a
failed write leaves no partial file."""
from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from pathlib import Path

import numpy as np
import polydiff
import torch

from .data import FPS, SIZE

MAX_FRAMES = 64          # the longest clip one sample may be (the modality's budget per clip)
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MAX_PIXELS = 4096 * 4096  # per image file: larger ones are refused before decoding (decompression bombs)


def has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _opened(path: Path, field: str):
    """PIL's image at ``path``, refused with one line naming ``field`` when over MAX_PIXELS."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise Image.DecompressionBombError(f"{im.width}x{im.height}")
                yield im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise polydiff.InvalidInputError(f"{field}: {str(path)!r} is refused: over the limit of {MAX_PIXELS:,} "
                                         "pixels (a decompression bomb?)") from None


def _rgb(im):
    """A frame as RGB, 16-bit grey scaled by 65535 (PIL's own convert clips it to white)."""
    from PIL import Image

    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        return Image.fromarray(np.rint(np.asarray(im, np.float64).clip(0, 65535) / 257).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


def _frames_from_images(images, field: str) -> np.ndarray:
    """A list of PIL images -> uint8 [T, H, W, 3]; mixed sizes are an error naming ``field``."""
    sizes = sorted({im.size for im in images})
    if len(sizes) > 1:
        raise polydiff.InvalidInputError(
            f"{field}: frames of mixed sizes ({', '.join(f'{w}x{h}' for w, h in sizes)}); "
            "every frame must have the same size")
    return np.stack([np.asarray(im.convert("RGB"), np.uint8) for im in images])


def _open(path: Path, field: str) -> np.ndarray:
    from PIL import ImageSequence, UnidentifiedImageError

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not files:
            raise polydiff.InvalidInputError(f"{field}: the folder {str(path)!r} holds no frame images")
        images = []
        for p in files:
            try:
                with _opened(p, field) as im:
                    images.append(_rgb(im))
            except (UnidentifiedImageError, OSError) as exc:
                raise polydiff.InvalidInputError(f"{field}: cannot read frame {p.name!r} ({exc})") from None
        return _frames_from_images(images, field)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise polydiff.InvalidInputError(f"{field}: cannot read {str(path)!r} as a .npy array ({exc})") from None
    if suffix in (".mp4", ".mov", ".webm", ".mkv"):
        return _read_video(path, field)
    try:
        with _opened(path, field) as im:
            frames = []
            for f in ImageSequence.Iterator(im):   # stop past the budget: no frame bomb is decoded whole
                frames.append(_rgb(f))
                if len(frames) > MAX_FRAMES:
                    break
    except polydiff.InvalidInputError:
        raise
    except (UnidentifiedImageError, OSError, EOFError, ValueError, IndexError) as exc:
        reason = "image file is truncated" if isinstance(exc, IndexError) else exc   # PIL on a GIF cut mid-frame
        raise polydiff.InvalidInputError(f"{field}: cannot read {str(path)!r} as a clip ({reason})") from None
    if not frames:
        raise polydiff.InvalidInputError(f"{field}: {str(path)!r} holds no frames")
    if len(frames) == 1 and suffix != ".gif":  # a still: a contact sheet of square frames
        sheet = np.asarray(frames[0], np.uint8)
        h, w = sheet.shape[:2]
        if w % h:
            raise polydiff.InvalidInputError(
                f"{field}: a still image is read as a contact sheet of square frames side by side; "
                f"its width {w} is not a multiple of its height {h}")
        return sheet.reshape(h, w // h, h, 3).transpose(1, 0, 2, 3)
    return _frames_from_images(frames, field)


def _read_video(path: Path, field: str) -> np.ndarray:
    if not has_pyav():
        raise polydiff.InvalidInputError(
            f"{field}: reading {path.suffix} needs PyAV (pip install 'polydiff-video[mp4]'); "
            "GIF, PNG frames and .npy work without it")
    import av

    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, OSError) as exc:  # type: ignore[attr-defined]
        raise polydiff.InvalidInputError(f"{field}: cannot read {str(path)!r} as a video ({exc})") from None
    if not frames:
        raise polydiff.InvalidInputError(f"{field}: {str(path)!r} holds no frames")
    return np.stack(frames)


def read_clip(value, field: str = "init", max_frames: int = MAX_FRAMES) -> torch.Tensor:
    """A clip as float [T, 3, SIZE, SIZE] in [0, 1] from a path or an array ([T, H, W, 3] or
    [T, 3, H, W], uint8 or float in [0, 1]); every problem is one error naming ``field``."""
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.exists():
            raise polydiff.InvalidInputError(f"{field}: no such file {str(value)!r}")
        value = _open(path, field)
    elif isinstance(value, (list, tuple)) and value and all(hasattr(v, "size") and hasattr(v, "convert")
                                                           for v in value):
        value = _frames_from_images(list(value), field)  # a list of PIL frames
    try:
        array = torch.as_tensor(np.array(value))
    except (ValueError, TypeError):
        raise polydiff.InvalidInputError(f"{field}: frames of mixed sizes; every frame must have the same size") from None
    if array.dtype == torch.uint8:
        array = array.float() / 255
    elif array.dtype == torch.bool or not (array.is_floating_point() or array.dtype in (torch.int32, torch.int64)):
        raise polydiff.InvalidInputError(f"{field}: expected pixel values, got an array of {array.dtype}")
    array = array.float()
    if array.ndim == 4 and array.shape[-1] == 3 and array.shape[1] != 3:
        array = array.permute(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1] != 3:
        raise polydiff.InvalidInputError(
            f"{field}: expected a clip of RGB frames (T x H x W x 3 or T x 3 x H x W), got shape {tuple(array.shape)}")
    if array.shape[0] == 0:
        raise polydiff.InvalidInputError(f"{field}: the clip is empty")
    if array.shape[0] > max_frames:
        raise polydiff.InvalidInputError(
            f"{field}: {array.shape[0]} frames is over the budget of {max_frames} frames per clip")
    if tuple(array.shape[2:]) != (SIZE, SIZE):
        raise polydiff.InvalidInputError(
            f"{field}: frames must be {SIZE}x{SIZE}, got {array.shape[3]}x{array.shape[2]}")
    if not torch.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise polydiff.InvalidInputError(f"{field}: pixel values must be in [0, 1] (or uint8)")
    return array.contiguous()


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """[T, 3, H, W] in [0, 1] -> uint8 [T, H, W, 3]."""
    return np.rint(frames.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8)


def contact_sheet(frames: torch.Tensor) -> np.ndarray:
    """The frames side by side, uint8 [H, T * W, 3]."""
    pixels = to_uint8(frames)
    return np.concatenate(list(pixels), axis=1)


def _atomic(path: Path, save) -> Path:
    """``save(tmp)`` then rename onto ``path``; nothing is left behind if ``save`` fails."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_gif(frames: torch.Tensor, path: Path, fps: float = FPS, scale: int = 1) -> Path:
    from PIL import Image

    pixels = to_uint8(frames)
    if scale > 1:
        pixels = pixels.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [Image.fromarray(p) for p in pixels]
    duration = max(int(round(1000 / fps)), 20)
    return _atomic(Path(path), lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0, disposal=1))


def save_sheet(frames: torch.Tensor, path: Path, scale: int = 1) -> Path:
    from PIL import Image

    sheet = contact_sheet(frames)
    if scale > 1:
        sheet = sheet.repeat(scale, axis=0).repeat(scale, axis=1)
    return _atomic(Path(path), lambda tmp: Image.fromarray(sheet).save(tmp, format="PNG"))


def save_mp4(frames: torch.Tensor, path: Path, fps: float = FPS) -> Path:
    import av

    def encode(tmp):
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(round(fps)))
            stream.width = stream.height = SIZE * 4
            stream.pix_fmt = "yuv420p"
            for p in to_uint8(frames):
                big = p.repeat(4, axis=0).repeat(4, axis=1)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(big, format="rgb24")))
            container.mux(stream.encode())

    return _atomic(Path(path), encode)


def write(outputs, folder, request) -> list[Path]:
    """Per sample ``{task}-{i:03d}.gif`` and ``{task}-{i:03d}.png`` (the contact sheet), and an
    ``.mp4`` when PyAV is installed."""
    folder = Path(folder)
    fps = float((request.options or {}).get("fps") or FPS)
    paths = []
    for i, frames in enumerate(outputs):
        stem = f"{request.task}-{i:03d}"
        paths.append(save_gif(frames, folder / f"{stem}.gif", fps))
        paths.append(save_sheet(frames, folder / f"{stem}.png"))
        if has_pyav():
            paths.append(save_mp4(frames, folder / f"{stem}.mp4", fps))
    return paths


def read(files) -> list[torch.Tensor]:
    """The samples ``write`` saved, in order, from their contact sheets (lossless 8-bit)."""
    sheets = sorted(Path(f) for f in files if Path(f).suffix == ".png")
    return [read_clip(p, p.name) for p in sheets]


def picture(x: torch.Tensor) -> np.ndarray:
    """The first clip of a model-space batch as a contact sheet, frames in reading order in two
    rows (a clip of odd length gets a black last frame): [2H, ceil(T/2)*W, 3] in [0, 1]."""
    frames = (x[0].float().clamp(-1, 1) + 1) / 2            # [T, 3, H, W]
    if len(frames) % 2:
        frames = torch.cat([frames, torch.zeros_like(frames[:1])])
    t, c, h, w = frames.shape
    return frames.reshape(2, t // 2, c, h, w).permute(0, 3, 1, 4, 2).reshape(2 * h, t // 2 * w, c).numpy()
