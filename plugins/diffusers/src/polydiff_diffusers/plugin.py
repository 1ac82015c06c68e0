"""Registers the ``diffusers`` backend of the image modality (the hook implementation only)."""
import polydiff


@polydiff.hookimpl
def register_backends(register) -> None:
    from . import backend

    register(polydiff.Backend(
        "diffusers", "image", backend.load, prediction="eps", devices=("cpu", "cuda"), models=True,
        description="your diffusers-format folder (--model): pixel UNet2DModel pipelines and "
                    "Stable Diffusion 1.x/2.x, safetensors only"))
