"""Checkpoints: ``NAME.safetensors`` (tensors) + ``NAME.json`` (config), never pickle.

Both files are written to temporary files in the same folder, fsynced, then moved into place
with ``os.replace``: the tensors first, the JSON last, so a present JSON means a complete
checkpoint and a failed save leaves the previous checkpoint as it was.

The JSON carries a ``_checkpoint`` record (an id and the sha256 of the tensors file) and the
safetensors header carries the same id, a copy of the config and a digest of that config and
the tensors. ``load_checkpoint`` verifies the sha256 whenever the JSON records one. A header id
that differs from the JSON's (a save that died between the two renames, or a replaced file) is
an error, unless the header's digest proves the tensors and config copy intact: then that copy
is used, with one line on stderr, so an interrupted save still loads, never unchecked. The
trainer's fields (``step``, ``model_config``, ``optimizer``, ...) are checked for type and
range before anything uses them, and ``load_trained`` checks ``model_config`` against the
network it builds (keys, types, size) before allocating it.
Absolute paths inside the checkpoint folder are recorded relative to it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .contract import LoadedModel

import hashlib
import inspect
import json
import math
import os
import re
import struct
import uuid
from pathlib import Path

import torch

from .errors import InvalidInputError

_RECORD = "_checkpoint"  # reserved JSON key: {"id", "sha256", "file"}
MAX_PARAMETERS = 2_000_000_000  # a model_config over this (8 GB of float32) is refused unbuilt
_MAX_DEPTH = 4  # nesting of model_config values (a list of lists at most, in practice)


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
    config = _relative_paths(config, folder)
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
    digest = _digest(tensors, text)
    ckpt_id = digest[:32]  # from the content, not random: the same save gives the same bytes
    tmp_st, tmp_js = _temp_path(folder, name), _temp_path(folder, name)
    try:
        open(tmp_st, "xb").close()  # created with the umask's permissions, which save_file drops
        mode = os.stat(tmp_st).st_mode
        save_file(tensors, str(tmp_st), metadata={"format": "pt", "polydiff_id": ckpt_id,
                                                  "polydiff_config": text, "polydiff_digest": digest})
        os.chmod(tmp_st, mode)
        _sort_header(tmp_st)
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
    record = _check_record(config.pop(_RECORD, None), js)
    try:
        with safe_open(str(st), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise InvalidInputError(f"corrupt checkpoint {st}: {exc}") from None
    header_id = header.get("polydiff_id")
    stale = bool(record.get("id")) and header_id is not None and header_id != record["id"]
    if not stale and record.get("sha256") and sha256_file(st) != record["sha256"]:
        raise InvalidInputError(f"corrupt checkpoint {st}: its sha256 does not match {js.name}")
    try:
        tensors = load_file(str(st), device="cpu" if stale else str(device))
    except (SafetensorError, OSError) as exc:
        raise InvalidInputError(f"corrupt checkpoint {st}: {exc}") from None
    if stale:
        config = _verified_header_config(header, tensors, st, js, record["id"])
        tensors = {k: v.to(device) for k, v in tensors.items()}
    check_config(config, js)
    return tensors, config


def _verified_header_config(header: dict, tensors: dict, st: Path, js: Path, json_id: str) -> dict:
    """The config copy in the tensors header, if its digest proves it and the tensors intact."""
    import sys

    text, digest = header.get("polydiff_config"), header.get("polydiff_digest")
    if text is None or digest is None or _digest(tensors, text) != digest:
        raise InvalidInputError(
            f"inconsistent checkpoint {js.parent}: {st.name} (id {header.get('polydiff_id')}) is not the "
            f"file {js.name} describes (id {json_id}) and cannot be verified on its own; save it again")
    try:
        config = json.loads(text)
        if not isinstance(config, dict):
            raise ValueError("the top level is not an object")
    except ValueError as exc:
        raise InvalidInputError(f"corrupt checkpoint {st}: its config copy: {exc}") from None
    print(f"polydiff: {js} is older than {st.name} (a save was interrupted); using the verified "
          "config inside the tensors file", file=sys.stderr)
    return config


def _digest(tensors: dict, text: str) -> str:
    """sha256 of the config text and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(text.encode())
    for key in sorted(tensors):
        value = tensors[key].detach().to("cpu").contiguous()
        digest.update(f"\0{key}\0{value.dtype}\0{tuple(value.shape)}\0".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _check_record(record, js: Path) -> dict:
    if record is None:
        return {}
    ok = isinstance(record, dict) and all(isinstance(record.get(k, ""), str) for k in ("id", "sha256", "file"))
    if ok and record.get("sha256") and not re.fullmatch(r"[0-9a-f]{64}", record["sha256"]):
        ok = False
    if not ok:
        raise InvalidInputError(f"corrupt checkpoint config {js}: field {_RECORD!r} is not an id/sha256 record")
    return record


def check_config(config: dict, where) -> None:
    """The trainer's fields of a checkpoint config, where present, have sane types and ranges:
    one line naming the field otherwise (a hand-edited or corrupt ``step: -100`` must not reach
    the trainer)."""
    def bad(field: str, why: str):
        raise InvalidInputError(f"corrupt checkpoint config {where}: field {field!r} {why}")

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if "step" in config and not (is_int(config["step"]) and config["step"] >= 0):
        bad("step", f"must be a whole number >= 0, got {config['step']!r}")
    if "world_size" in config and not (is_int(config["world_size"]) and config["world_size"] >= 1):
        bad("world_size", f"must be a whole number >= 1, got {config['world_size']!r}")
    if config.get("mask_id") is not None and not (is_int(config["mask_id"]) and config["mask_id"] >= 0):
        bad("mask_id", f"must be a whole number >= 0, got {config['mask_id']!r}")
    for field in ("prediction", "schedule"):
        if field in config and not (isinstance(config[field], str) and config[field]):
            bad(field, f"must be a name, got {config[field]!r}")
    if "prediction" in config and config["prediction"] not in ("eps", "v", "x0", "flow", "logits"):
        bad("prediction", f"must be one of eps, v, x0, flow, logits, got {config['prediction']!r}")
    if "t_range" in config:
        t = config["t_range"]
        if not (isinstance(t, list) and len(t) == 2 and all(isinstance(v, (int, float)) and not
                                                            isinstance(v, bool) and 0 <= v <= 1 for v in t)):
            bad("t_range", f"must be two times in [0, 1], got {t!r}")
    for field in ("model_config", "train"):
        if field in config and not isinstance(config[field], dict):
            bad(field, f"must be an object, got {type(config[field]).__name__}")
    if "model_config" in config:
        _check_plain(config["model_config"], "model_config", bad, 0)
    if "optimizer" in config:
        opt = config["optimizer"]
        if not (isinstance(opt, dict) and isinstance(opt.get("param_groups"), list)
                and all(isinstance(g, dict) for g in opt["param_groups"]) and isinstance(opt.get("state"), dict)):
            bad("optimizer", "must be an object with a list 'param_groups' and an object 'state'")


def _check_plain(value, field: str, bad, depth: int) -> None:
    """Plain JSON values, finite numbers, at most ``_MAX_DEPTH`` levels deep."""
    if depth > _MAX_DEPTH:
        bad(field, f"is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{field}.{key}", bad, depth + 1)
    elif isinstance(value, list):
        if len(value) > 4096:
            bad(field, f"has {len(value)} items (at most 4096)")
        for i, item in enumerate(value):
            _check_plain(item, f"{field}[{i}]", bad, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        bad(field, f"is not a finite number: {value!r}")


def _relative_paths(config, folder: Path):
    """A copy of ``config`` where each absolute path inside ``folder`` (the trainer's ``out``,
    typically) is relative to it: a checkpoint copied elsewhere must not name this machine's paths."""
    if isinstance(config, dict):
        return {k: _relative_paths(v, folder) for k, v in config.items()}
    if isinstance(config, list):
        return [_relative_paths(v, folder) for v in config]
    if isinstance(config, str) and "\n" not in config and os.path.isabs(config):
        try:
            return Path(config).resolve().relative_to(folder.resolve()).as_posix()
        except (ValueError, OSError):
            return config
    return config


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


def _sort_header(path: Path) -> None:
    """Rewrite the safetensors JSON header with sorted keys, in place and at the same length:
    the writer orders the metadata by a randomly seeded hash map, so the same save would differ
    in bytes from run to run. Left as it is if the sorted text does not fit."""
    with open(path, "r+b") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) <= size:
            f.seek(8)
            f.write(text + b" " * (size - len(text)))  # the format pads its header with spaces


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


def load_trained(folder, build, device="cpu", *, config_model=None) -> LoadedModel:
    """A ``LoadedModel`` from a checkpoint the ``Trainer`` wrote: ``build(**model_config)``
    makes the network, which gets the (EMA) weights, eval mode and no gradients; the schedule
    and prediction come from the checkpoint. What every backend's ``load(device)`` needs.

    ``model_config`` is checked first (``check_model_config``): against ``config_model`` (a
    pydantic model; default: ``build.config_model`` if the class declares one), against
    ``build``'s signature, then by building the network on the meta device (no memory) and
    comparing its parameter count and tensor shapes with the checkpoint's; a checkpoint shipped
    inside the package that defines ``build`` skips the meta build (as trusted as the code that
    builds it; the real load still checks every shape), which saves a CLI call the 1.2 s that
    torch takes to import torch._dynamo for meta-device arithmetic. Step grids tuned for the
    model (``step-grids.json`` in the folder, see ``polydiff.tune_steps``) come along."""
    from .contract import LoadedModel
    from .registries import components

    tensors, config = load_checkpoint(folder, device=device)
    model_config = check_model_config(build, config.get("model_config", {}), tensors, where=folder,
                                      config_model=config_model, build_on_meta=not _ships_with(build, folder))
    try:
        net = build(**model_config).to(device)
        net.load_state_dict(tensors)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidInputError(f"checkpoint {folder}: model_config does not build this network: "
                                f"{' '.join(str(exc).split())[:300]}") from None
    net.eval().requires_grad_(False)
    from .step_grids import read_grids

    where = Path(folder) if Path(folder).is_dir() else Path(folder).parent
    latent = config.get("latent_shape")
    return LoadedModel(net=net, schedule=components().schedules.get_named(config["schedule"]),
                       prediction=config["prediction"], config=config, mask_id=config.get("mask_id"),
                       step_grids=read_grids(where), latent=tuple(latent) if latent else None,
                       times=config.get("times"), guidance=config.get("guidance"),
                       sampler=config.get("sampler", "ddpm" if config.get("times") else None))


def _ships_with(build, folder) -> bool:
    """Whether the checkpoint lies inside the package directory of the module defining ``build``."""
    try:
        home = Path(inspect.getfile(build)).resolve().parent
        where = Path(folder).resolve()
    except (TypeError, OSError):
        return False
    return where == home or home in where.parents


def check_model_config(build, model_config: dict, tensors: dict | None = None, *, where="checkpoint",
                       config_model=None, build_on_meta: bool = True) -> dict:
    """``model_config`` as ``build`` should receive it, or one line naming what is wrong: an
    unknown key, a value of the wrong type, a network over ``MAX_PARAMETERS``, or tensor shapes
    that differ from the checkpoint's. Nothing real is allocated."""
    def bad(why: str):
        raise InvalidInputError(f"checkpoint {where}: model_config: {why}")

    if not isinstance(model_config, dict):
        bad(f"must be an object, got {type(model_config).__name__}")
    config_model = config_model or getattr(build, "config_model", None)
    if config_model is not None:
        from pydantic import ValidationError

        from .request import describe

        try:
            model_config = config_model.model_validate(model_config).model_dump()
        except ValidationError as exc:
            bad(" ".join(describe(exc).split()))
    _check_signature(build, model_config, bad)
    if not build_on_meta:
        return model_config
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build(**model_config).state_dict().items()}
    except (TypeError, ValueError) as exc:
        bad(" ".join(str(exc).split())[:300])
    except Exception:  # noqa: BLE001 - a network that cannot be built on meta: the shapes are checked on load
        return model_config
    count = sum(math.prod(s) for s in shapes.values())
    if count > MAX_PARAMETERS:
        bad(f"the network would have {count:,} values, over the limit of {MAX_PARAMETERS:,}")
    if tensors is not None:
        for key in sorted(set(shapes) ^ set(tensors)):
            bad(f"{'the checkpoint lacks' if key in shapes else 'the network has no'} tensor {key!r}")
        for key, shape in shapes.items():
            if tuple(tensors[key].shape) != shape:
                bad(f"tensor {key!r} is {tuple(tensors[key].shape)} in the checkpoint, {shape} in the network")
    return model_config


def _check_signature(build, model_config: dict, bad) -> None:
    """Keys the constructor does not take, and values whose JSON type differs from the default's."""
    try:
        params = inspect.signature(build).parameters
    except (TypeError, ValueError):
        return
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for key, value in model_config.items():
        param = params.get(key)
        if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            if not takes_any:
                bad(f"unknown key {key!r} (known: {', '.join(k for k in params if k != 'self')})")
            continue
        default = param.default
        if default is param.empty or default is None:
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and (isinstance(value, int) or not isinstance(default, int))
        elif isinstance(default, str):
            ok = isinstance(value, str)
        elif isinstance(default, (list, tuple)):
            ok = isinstance(value, list)
        else:
            ok = True
        if not ok:
            bad(f"{key!r} must be like its default {default!r}, got {value!r}")
