"""A diffusers folder as a polydiff ``LoadedModel``: the UNet is the network (timesteps from
polydiff's times), the scheduler config the schedule, and for latent models the VAE and the
CLIP text encoder the ``ModelSpace`` the image tasks plan in (latents <-> pixels with the
folder's scaling factor; the empty prompt as the null condition, as diffusers uses it)."""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import polydiff
import torch

from .folder import LATENT, Folder, read_folder
from .schedule import schedule_of, timesteps

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _dtype(device: str) -> torch.dtype:
    """float32 on the CPU, float16 on CUDA (what these models are run in); POLYDIFF_DIFFUSERS_DTYPE overrides."""
    name = os.environ.get("POLYDIFF_DIFFUSERS_DTYPE")
    if name is None:
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    if name not in DTYPES:
        raise polydiff.InvalidInputError(f"POLYDIFF_DIFFUSERS_DTYPE: {name!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[name]


def _diffusers():
    try:
        import diffusers
    except ImportError:
        raise polydiff.InvalidInputError("backend diffusers needs the diffusers package: "
                                         "polydiff plugins install diffusers") from None
    return diffusers


@contextlib.contextmanager
def _quiet():
    """No loading chatter (progress bars, the accelerate hint) while we load; the libraries'
    own settings are restored afterwards, for the user's other calls in this process."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    levels = dlog.get_verbosity(), tlog.get_verbosity()
    bars = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    dlog.set_verbosity_error(), tlog.set_verbosity_error()
    dlog.disable_progress_bar(), tlog.disable_progress_bar()
    try:
        yield
    finally:
        dlog.set_verbosity(levels[0]), tlog.set_verbosity(levels[1])
        if bars[0]:
            dlog.enable_progress_bar()
        if bars[1]:
            tlog.enable_progress_bar()


def _part(cls, folder: Folder, name: str, dtype, device):
    try:
        with _quiet():
            model = cls.from_pretrained(folder.part(name), use_safetensors=True, torch_dtype=dtype, variant=folder.variant)
    except (OSError, ValueError, RuntimeError, TypeError) as exc:  # a config or tensors that do not fit
        raise polydiff.InvalidInputError(f"model: {folder.part(name)} does not load as {cls.__name__}: "
                                         f"{' '.join(str(exc).split())[:300]}") from None
    return model.to(device).eval().requires_grad_(False)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _side(size) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def load(device, model) -> polydiff.LoadedModel:
    folder = read_folder(model)
    schedule, prediction = schedule_of(folder.path)
    diffusers, dtype = _diffusers(), _dtype(device)
    latent = folder.kind == LATENT
    unet = _part(diffusers.UNet2DConditionModel if latent else diffusers.UNet2DModel, folder, "unet", dtype, device)
    config = unet.config
    if config.in_channels != config.out_channels:
        raise polydiff.InvalidInputError(
            f"model: the UNet takes {config.in_channels} channels and returns {config.out_channels} (an inpainting "
            "or depth UNet with extra inputs); the diffusers backend runs models whose output is their input's shape")
    if getattr(config, "num_class_embeds", None) or getattr(config, "class_embed_type", None):
        raise polydiff.InvalidInputError("model: a class-conditional UNet is not supported (no class labels to give it)")
    if not latent and config.in_channels not in (1, 3):
        raise polydiff.InvalidInputError(f"model: a pixel UNet of {config.in_channels} channels is not an image model")

    def net(x, t, cond=None):
        kwargs = {"encoder_hidden_states": cond.to(dtype)} if latent else {}
        return unet(x.to(dtype), timesteps(schedule, t).to(x.device), **kwargs).sample.to(x.dtype)

    space = (_latent_space if latent else _pixel_space)(folder, unet, diffusers, dtype, device)
    source = {"folder": str(folder.path), "pipeline": folder.pipeline, "dtype": str(dtype).removeprefix("torch."),
              "weights_sha256": {str(p.relative_to(folder.path)): _sha256(p) for p in folder.weights}}
    return polydiff.LoadedModel(net=net, schedule=schedule, prediction=prediction, space=space, source=source,
                                config={"pipeline": folder.pipeline, "unet": dict(config)})


def _pixel_space(folder, unet, diffusers, dtype, device) -> polydiff.ModelSpace:
    channels, (h, w) = unet.config.in_channels, _side(unet.config.sample_size)

    def encode(images):  # [n, 3, H, W] in [0, 1] -> the model's [-1, 1] (grey models: the mean of RGB)
        x = images * 2 - 1
        return x.mean(1, keepdim=True) if channels == 1 else x

    def decode(x):
        x = ((x.float().clamp(-1, 1) + 1) / 2)
        return x.expand(-1, 3, -1, -1) if channels == 1 else x

    return polydiff.ModelSpace(shape=(channels, h, w), data_shape=(3, h, w), encode=encode, decode=decode)


def _latent_space(folder, unet, diffusers, dtype, device) -> polydiff.ModelSpace:
    import transformers

    vae = _part(diffusers.AutoencoderKL, folder, "vae", dtype, device)
    text = _part(transformers.CLIPTextModel, folder, "text_encoder", dtype, device)
    try:
        with _quiet():
            tokenizer = transformers.CLIPTokenizer.from_pretrained(folder.part("tokenizer"))
    except (OSError, ValueError, TypeError) as exc:
        raise polydiff.InvalidInputError(f"model: {folder.part('tokenizer')} does not load as a CLIP tokenizer: "
                                         f"{' '.join(str(exc).split())[:300]}") from None
    scale = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    (lh, lw), channels = _side(unet.config.sample_size), unet.config.in_channels
    if vae.config.latent_channels != channels:
        raise polydiff.InvalidInputError(f"model: the VAE makes {vae.config.latent_channels}-channel latents, "
                                         f"the UNet takes {channels}")
    if text.config.hidden_size != unet.config.cross_attention_dim:
        raise polydiff.InvalidInputError(f"model: the text encoder gives {text.config.hidden_size} features, "
                                         f"the UNet attends to {unet.config.cross_attention_dim}")
    encoded: dict[str, torch.Tensor] = {}

    def embed(prompts):
        missing = [p for p in dict.fromkeys(prompts) if p not in encoded]
        if missing:
            ids = tokenizer(missing, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                            return_tensors="pt").input_ids.to(device)
            with torch.inference_mode():
                hidden = text(ids)[0].float()
            encoded.update(zip(missing, hidden))
        return torch.stack([encoded[p] for p in prompts])

    def condition(prompts):
        return embed(prompts), embed([""] * len(prompts))

    def encode(images):  # pixels in [0, 1] -> latents: the posterior's mean, shifted and scaled
        with torch.inference_mode():
            z = vae.encode((images * 2 - 1).to(device, dtype)).latent_dist.mean
        return ((z.float() - shift) * scale)

    def decode(z):
        with torch.inference_mode():
            x = vae.decode((z / scale + shift).to(dtype)).sample
        return ((x.float().clamp(-1, 1) + 1) / 2)

    return polydiff.ModelSpace(shape=(channels, lh, lw), data_shape=(3, lh * factor, lw * factor),
                               encode=encode, decode=decode, condition=condition, latent=True)
