"""Checkpoints: ``NAME.safetensors`` (tensors) + ``NAME.json`` (config), never pickle.

Both files are written to temporary files in the same folder, fsynced, then moved into place
with ``os.replace``: the tensors first, the JSON last, so a present JSON means a complete
checkpoint and a failed save leaves the previous checkpoint as it was.

The JSON carries a ``_checkpoint`` record (an id and the sha256 of the tensors file) and the
safetensors header carries the same id plus a copy of the config. ``load_checkpoint`` uses them
to reject a corrupt tensors file and to stay consistent if a process died in the instant between
the two renames (new tensors, old JSON): then the config copy inside the tensors file is used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .contract import LoadedModel

import hashlib
import json
import os
import uuid
from pathlib import Path

import torch

from .errors import InvalidInputError

_RECORD = "_checkpoint"  # reserved JSON key: {"id", "sha256", "file"}


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints can be larger than memory allows twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(folder, tensors: dict, config: dict, *, name: str = "model") -> Path:
    """Write ``folder/NAME.safetensors`` and ``folder/NAME.json`` atomically; return the former."""
    from safetensors.torch import save_file

    folder = Path(folder)
    _check_name(name)
    if not isinstance(config, dict) or _RECORD in config:
        raise InvalidInputError(f"checkpoint config must be a dict without the key {_RECORD!r}")
    try:  # fail before touching the disk
        text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"checkpoint config for {folder / name} is not plain JSON: {exc}") from None
    tensors = _plain_tensors(tensors)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f".{name}.{'?' * 12}.tmp"):  # left by a process killed mid-save
        stale.unlink(missing_ok=True)
    st, js = folder / f"{name}.safetensors", folder / f"{name}.json"
    ckpt_id = uuid.uuid4().hex
    tmp_st, tmp_js = _temp_path(folder, name), _temp_path(folder, name)
    try:
        open(tmp_st, "xb").close()  # created with the umask's permissions, which save_file drops
        mode = os.stat(tmp_st).st_mode
        save_file(tensors, str(tmp_st), metadata={"format": "pt", "polydiff_id": ckpt_id,
                                                  "polydiff_config": text})
        os.chmod(tmp_st, mode)
        _fsync(tmp_st)
        record = {"id": ckpt_id, "sha256": sha256_file(tmp_st), "file": st.name}
        with open(tmp_js, "x", encoding="utf-8") as f:
            json.dump({**config, _RECORD: record}, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_st, st)
        os.replace(tmp_js, js)
    finally:
        for tmp in (tmp_st, tmp_js):
            tmp.unlink(missing_ok=True)
    _fsync_dir(folder)
    return st


def load_checkpoint(folder_or_file, *, name: str = "model", device="cpu") -> tuple[dict, dict]:
    """``(tensors, config)`` of a checkpoint folder, or of a ``.safetensors``/``.json`` path."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    st, js = _paths(Path(folder_or_file), name)
    if not js.is_file():
        raise InvalidInputError(f"no checkpoint at {js.parent}: {js.name} is missing "
                                "(not written yet, or its save did not finish)")
    if not st.is_file():
        raise InvalidInputError(f"incomplete checkpoint: {st} is missing (its config {js} exists)")
    try:
        config = json.loads(js.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError("the top level is not an object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"corrupt checkpoint config {js}: {exc}") from None
    record = config.pop(_RECORD, None) or {}
    try:
        with safe_open(str(st), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise InvalidInputError(f"corrupt checkpoint {st}: {exc}") from None
    stale = header.get("polydiff_id") not in (None, record.get("id")) and "polydiff_config" in header
    if record.get("id") and stale:
        # Died between the two renames: the tensors are newer than the JSON; use their config.
        config = json.loads(header["polydiff_config"])
    elif record.get("sha256") and sha256_file(st) != record["sha256"]:
        raise InvalidInputError(f"corrupt checkpoint {st}: its sha256 does not match {js.name}")
    try:
        tensors = load_file(str(st), device=str(device))
    except (SafetensorError, OSError) as exc:
        raise InvalidInputError(f"corrupt checkpoint {st}: {exc}") from None
    return tensors, config


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise InvalidInputError(f"checkpoint name must be a plain file stem, got {name!r}")


def _paths(path: Path, name: str) -> tuple[Path, Path]:
    if path.is_dir():
        _check_name(name)
        return path / f"{name}.safetensors", path / f"{name}.json"
    if path.suffix in (".safetensors", ".json"):
        return path.with_suffix(".safetensors"), path.with_suffix(".json")
    raise InvalidInputError(
        f"no checkpoint at {path}: expected a folder, a .safetensors or a .json path")


def _plain_tensors(tensors: dict) -> dict:
    """Contiguous CPU tensors, none sharing memory (safetensors refuses shared storage)."""
    if not isinstance(tensors, dict):
        raise InvalidInputError(
            f"checkpoint tensors must be a dict of name -> tensor, got {type(tensors).__name__}")
    out, seen = {}, set()
    for key, value in tensors.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise InvalidInputError(f"checkpoint entry {key!r} is not a named tensor")
        value = value.detach().to("cpu").contiguous()
        ptr = value.untyped_storage().data_ptr()
        if ptr in seen:
            value = value.clone()
        seen.add(value.untyped_storage().data_ptr())
        out[key] = value
    return out


def _temp_path(folder: Path, name: str) -> Path:
    return folder / f".{name}.{uuid.uuid4().hex[:12]}.tmp"


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable; not possible on every platform, harmless where it is not."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_trained(folder, build, device="cpu") -> LoadedModel:
    """A ``LoadedModel`` from a checkpoint the ``Trainer`` wrote: ``build(**model_config)``
    makes the network, which gets the (EMA) weights, eval mode and no gradients; the schedule
    and prediction come from the checkpoint. What every backend's ``load(device)`` needs."""
    from .contract import LoadedModel
    from .registries import components

    tensors, config = load_checkpoint(folder, device=device)
    net = build(**config.get("model_config", {})).to(device)
    net.load_state_dict(tensors)
    net.eval().requires_grad_(False)
    return LoadedModel(net=net, schedule=components().schedules.get_named(config["schedule"]),
                       prediction=config["prediction"], config=config, mask_id=config.get("mask_id"))
