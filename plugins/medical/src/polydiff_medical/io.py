"""Slice files. In: NIfTI (nibabel; a 3-D volume needs ``--slice``), DICOM (pydicom; rescale
slope and intercept applied), ``.npy`` and PNG (8 or 16 bit). Out, per sample: NIfTI image and
mask (with the input's affine and header when the input was NIfTI, in the input's intensity
units), ``.npy`` (what ``read`` reads back) and a PNG preview with the mask outlined; the
segmentation task adds the probability, uncertainty and majority masks over its samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch

from .data import SIZE

MAX_PIXELS = 4096 * 4096
# tasks whose mask channel is a result; elsewhere it is the joint prior's by-product, kept in
# the .npy but neither written as a mask nor outlined
MASKED_TASKS = ("generate", "segment")


def _suffix(path) -> str:
    name = str(path).lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def read_array(value, field: str, slice_index: int | None = None) -> tuple[np.ndarray, dict]:
    """A 2-D array from a path or an array, with where it came from (``source``: kind, and for
    NIfTI the affine, header and slice) so outputs can be written back in line with it."""
    if not isinstance(value, (str, Path)):
        array = np.asarray(value)
        return _two_d(array, field, slice_index, "array"), {"kind": "array"}
    path = Path(value)
    if not path.is_file():
        raise polydiff.InvalidInputError(f"{field}: no such file {str(value)!r}")
    kind = _suffix(path)
    try:
        if kind in (".nii", ".nii.gz"):
            import nibabel

            img = nibabel.load(str(path))
            array = np.asarray(img.dataobj, dtype=np.float32)
            index = _slice_of(array, field, slice_index)
            source = {"kind": "nifti", "path": str(path), "slice": index}
            return (array if array.ndim == 2 else array[:, :, index]), source
        if kind == ".npy":
            array = np.load(path, allow_pickle=False)
            return _two_d(array, field, slice_index, "array"), {"kind": "npy"}
        if kind in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
            return _picture_file(path, field), {"kind": "picture"}
        return _dicom(path, field), {"kind": "dicom", "path": str(path)}
    except polydiff.InvalidInputError:
        raise
    except Exception as exc:  # any reader's failure on a user's file is one line naming it
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise polydiff.InvalidInputError(f"{field}: cannot read {str(value)!r} ({reason})") from None


def _slice_of(array: np.ndarray, field: str, slice_index: int | None) -> int | None:
    if array.ndim == 2:
        return None
    if array.ndim == 3 and array.shape[2] == 1:
        return 0
    if array.ndim != 3:
        raise polydiff.InvalidInputError(f"{field}: a {array.ndim}-D NIfTI {'x'.join(map(str, array.shape))}; "
                                         "give a 2-D slice or a 3-D volume with --slice")
    if slice_index is None:
        raise polydiff.InvalidInputError(f"{field}: a 3-D NIfTI with {array.shape[2]} slices; pass --slice K "
                                         f"(0 to {array.shape[2] - 1})")
    if not 0 <= slice_index < array.shape[2]:
        raise polydiff.InvalidInputError(f"slice: {slice_index} is outside 0 to {array.shape[2] - 1}")
    return slice_index


def _two_d(array: np.ndarray, field: str, slice_index, what: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise polydiff.InvalidInputError(f"{field}: expected a 2-D {what}, got shape {tuple(array.shape)}")
    if slice_index is not None:
        raise polydiff.InvalidInputError("slice: only a 3-D NIfTI has slices to choose")
    return array


def _picture_file(path: Path, field: str) -> np.ndarray:
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise polydiff.InvalidInputError(f"{field}: {img.width}x{img.height} is over the limit of "
                                                 f"{MAX_PIXELS:,} pixels")
            img.load()
            if img.mode.startswith("I;16") or img.mode == "I":
                return np.asarray(img, dtype=np.float32) / 65535.0
            return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def _dicom(path: Path, field: str) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(str(path))
    except InvalidDicomError:
        raise polydiff.InvalidInputError(f"{field}: {str(path)!r} is not NIfTI, DICOM, .npy or PNG") from None
    if "PixelData" not in ds:
        raise polydiff.InvalidInputError(f"{field}: the DICOM file {str(path)!r} has no pixel data")
    pixels = ds.pixel_array.astype(np.float32)
    if pixels.ndim != 2:
        raise polydiff.InvalidInputError(f"{field}: a multi-frame DICOM {tuple(pixels.shape)}; give one frame")
    return pixels * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)


def window(array: np.ndarray) -> tuple[float, float]:
    """The intensity range mapped to [0, 1]: [0, 1] itself when the values lie in it, else the
    array's minimum and maximum (CT units, MR signal)."""
    lo, hi = float(array.min()), float(array.max())
    return (0.0, 1.0) if lo >= 0 and hi <= 1 else (lo, hi if hi > lo else lo + 1)


def read_slice(value, field: str, slice_index: int | None = None) -> tuple[torch.Tensor, dict]:
    """A SIZE x SIZE slice as float [H, W] in [0, 1], and its source (with the window)."""
    return unit_slice(*read_array(value, field, slice_index), field)


def unit_slice(array: np.ndarray, source: dict, field: str, shapes=((SIZE, SIZE),),
               expect: str = f"slices must be {SIZE}x{SIZE} (the model's size)") -> tuple[torch.Tensor, dict]:
    """An array already read, checked (real, finite, one of ``shapes``) and windowed to [0, 1]."""
    if np.iscomplexobj(array):
        raise polydiff.InvalidInputError(f"{field}: complex values; k-space goes to reconstruct-mri")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise polydiff.InvalidInputError(f"{field}: holds NaN or infinite values")
    if array.shape not in shapes:
        raise polydiff.InvalidInputError(f"{field}: {expect}, got {array.shape[0]}x{array.shape[1]}; "
                                         "resample it first")
    lo, hi = window(array)
    return torch.from_numpy((array - lo) / (hi - lo)).clamp(0, 1), dict(source, window=[lo, hi])


# -- outputs --------------------------------------------------------------------------------


def write(outputs, folder: Path, request) -> list[Path]:
    """Per sample i: ``TASK-i.nii.gz`` (image), ``TASK-i-mask.nii.gz`` (generate and segment),
    ``TASK-i.npy`` ([2, H, W]: image and mask in [0, 1]) and ``TASK-i.png``; segment adds ``probability``, ``uncertainty``
    and ``segmentation`` (NIfTI and PNG) over all samples."""
    folder = Path(folder)
    source = _source_of(request)
    masked = request.task in MASKED_TASKS
    files = []
    for i, out in enumerate(outputs):
        out = np.asarray(out, dtype=np.float32)
        stem = f"{request.task}-{i:03d}"
        lo, hi = source["window"]
        files.append(_nifti(folder / f"{stem}.nii.gz", out[0] * (hi - lo) + lo, source))
        if masked:
            files.append(_nifti(folder / f"{stem}-mask.nii.gz", (out[1] >= 0.5).astype(np.float32), source))
        np.save(folder / f"{stem}.npy", out)
        files.append(folder / f"{stem}.npy")
        files.append(_png(folder / f"{stem}.png", preview(out[0], (out[1] >= 0.5) & masked)))
    if request.task == "segment":
        masks = np.stack([np.asarray(o)[1] for o in outputs]) >= 0.5
        probability = masks.mean(0).astype(np.float32)
        uncertainty = masks.std(0).astype(np.float32)
        image = np.asarray(outputs[0])[0]
        files.append(_nifti(folder / "probability.nii.gz", probability, source))
        files.append(_nifti(folder / "uncertainty.nii.gz", uncertainty, source))
        files.append(_nifti(folder / "segmentation.nii.gz", (probability >= 0.5).astype(np.float32), source))
        files.append(_png(folder / "segmentation.png", preview(image, probability >= 0.5)))
        files.append(_png(folder / "probability.png", heat(probability)))
        files.append(_png(folder / "uncertainty.png", heat(uncertainty / 0.5)))
    return files


def read(files) -> list[np.ndarray]:
    """The outputs back from a result's ``.npy`` files: each [2, H, W] float32."""
    return [np.load(f) for f in sorted(map(Path, files)) if f.suffix == ".npy"]


def _source_of(request) -> dict:
    if request.init is None:
        return {"kind": "none", "window": [0.0, 1.0]}
    try:
        return read_slice(request.init, "init", request.options.get("slice"))[1]
    except polydiff.InvalidInputError:  # k-space or a sinogram: no image to line up with
        return {"kind": "measurement", "window": [0.0, 1.0]}


def _nifti(path: Path, array: np.ndarray, source: dict) -> Path:
    import nibabel

    if source.get("kind") == "nifti":
        like = nibabel.load(source["path"])
        affine, header = like.affine.copy(), like.header.copy()
        if source.get("slice") is not None:
            affine[:3, 3] += affine[:3, 2] * source["slice"]  # the chosen slice's position
        data = array[:, :, None] if len(like.shape) == 3 else array
        header.set_data_dtype(np.float32)
        img = nibabel.Nifti1Image(data.astype(np.float32), affine, header)
    else:
        img = nibabel.Nifti1Image(array.astype(np.float32), np.eye(4))
    nibabel.save(img, str(path))
    return path


def preview(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8: the image in grey with the mask's outline in red, at 4x."""
    grey = np.clip(image, 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    m = mask.astype(bool)
    edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
    rgb[edge] = (1.0, 0.15, 0.1)
    return _zoom((rgb * 255).round().astype(np.uint8))


def heat(values: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8: values in [0, 1] from black through red to yellow, at 4x."""
    v = np.clip(values, 0, 1)[..., None]
    rgb = np.concatenate([np.clip(2 * v, 0, 1), np.clip(2 * v - 1, 0, 1), np.zeros_like(v)], axis=2)
    return _zoom((rgb * 255).round().astype(np.uint8))


def _zoom(rgb: np.ndarray, k: int = 4) -> np.ndarray:
    return np.kron(rgb, np.ones((k, k, 1), np.uint8))


def _png(path: Path, rgb: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(rgb).save(path)
    return path


def picture(x: torch.Tensor) -> np.ndarray:
    """The first slice of a model-space batch as [H, W] in [0, 1] (image channel), for figures."""
    return ((x[0, 0].float().clamp(-1, 1) + 1) / 2).numpy()
