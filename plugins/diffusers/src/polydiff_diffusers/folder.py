"""Reading a diffusers-format folder: what pipeline it holds, whether polydiff can run it, and
where its safetensors weights are. Every refusal is one line naming the file or the cause."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polydiff

PIXEL, LATENT = "pixel", "latent"
SUPPORTED = ("UNet2DModel pipelines (DDPM, DDIM: pixel space) and Stable Diffusion 1.x/2.x "
             "(UNet2DConditionModel + AutoencoderKL + CLIPTextModel)")
LATENT_PARTS = {"vae": ("AutoencoderKL",), "text_encoder": ("CLIPTextModel",),
                "tokenizer": ("CLIPTokenizer", "CLIPTokenizerFast")}
PICKLES = (".bin", ".ckpt", ".pt", ".pth", ".pkl")
WEIGHT_PARTS = ("unet", "vae", "text_encoder")


@dataclass
class Folder:
    path: Path
    pipeline: str           # model_index.json's _class_name
    kind: str               # PIXEL or LATENT
    variant: str | None     # "fp16" when only the fp16 weight files are there
    weights: list[Path]     # every safetensors file the model loads

    def part(self, name: str) -> Path:
        return self.path / name


def _json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise polydiff.InvalidInputError(f"{path}: not readable JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(value, dict):
        raise polydiff.InvalidInputError(f"{path}: expected a JSON object")
    return value


def read_folder(path) -> Folder:
    """The folder's pipeline, checked: its classes, and safetensors weights for every part."""
    path = Path(path)
    if not path.is_dir():
        raise polydiff.InvalidInputError(f"model: {path} is not a folder")
    if not (path / "model_index.json").is_file():
        raise polydiff.InvalidInputError(
            f"model: {path} has no model_index.json, so it is not a diffusers folder "
            "(save_pretrained writes one; a single .safetensors/.ckpt file needs converting to a folder first)")
    index = _json(path / "model_index.json")
    pipeline = str(index.get("_class_name", "?"))
    parts = {k: v[1] for k, v in index.items()
             if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[1] is not None}
    unet = parts.get("unet")
    if unet not in ("UNet2DModel", "UNet2DConditionModel") or "text_encoder_2" in parts:
        denoiser = unet or parts.get("transformer") or parts.get("prior") or "none"
        raise polydiff.InvalidInputError(
            f"model: {pipeline} (denoiser {denoiser}) is not supported; the diffusers backend runs {SUPPORTED}")
    kind = PIXEL if unet == "UNet2DModel" else LATENT
    if kind == LATENT:
        for name, classes in LATENT_PARTS.items():
            if parts.get(name) not in classes:
                raise polydiff.InvalidInputError(
                    f"model: {pipeline} has {name} {parts.get(name) or 'missing'}, expected {' or '.join(classes)} "
                    f"(the diffusers backend runs {SUPPORTED})")
    if "scheduler" not in parts or not (path / "scheduler" / "scheduler_config.json").is_file():
        raise polydiff.InvalidInputError(f"model: {path} has no scheduler/scheduler_config.json (the noise schedule)")
    names = ["unet"] + ([n for n in WEIGHT_PARTS if n != "unet"] if kind == LATENT else [])
    found = [_weights(path, name) for name in names]
    variants = {v for _, v in found}
    if len(variants) > 1:
        raise polydiff.InvalidInputError(f"model: {path} mixes fp16-only and full weight files across its parts")
    return Folder(path, pipeline, kind, variants.pop(), [f for files, _ in found for f in files])


def _weights(path: Path, name: str) -> tuple[list[Path], str | None]:
    part = path / name
    if not (part / "config.json").is_file():
        raise polydiff.InvalidInputError(f"model: {part} has no config.json")
    files = sorted(part.glob("*.safetensors"))
    full = [f for f in files if ".fp16." not in f.name]
    if full or files:
        return (full, None) if full else (files, "fp16")
    pickles = sorted(f.name for f in part.iterdir() if f.suffix in PICKLES)
    if pickles:
        raise polydiff.InvalidInputError(
            f"model: {part / pickles[0]} is a pickle, which can run code when loaded; polydiff loads safetensors "
            f"only. Convert a folder you trust once with: python -c \"from diffusers import DiffusionPipeline; "
            f"DiffusionPipeline.from_pretrained('{path}').save_pretrained('{path}-safetensors')\"")
    raise polydiff.InvalidInputError(f"model: {part} holds no weights (*.safetensors)")
