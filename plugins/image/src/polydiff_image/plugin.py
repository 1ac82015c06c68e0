"""Registers the image modality and its backend. Uses only polydiff's public API; the text
encoder comes from the registry by name (``minilm``, from polydiff-text)."""
import polydiff

TASKS = {
    "generate": "text to image (prompt, n, guidance)",
    "inpaint": "regenerate the white part of --mask in --init, guided by the prompt",
    "img2img": "SDEdit: change --init towards the prompt (--strength in (0, 1])",
    "super-resolution": "8x8 or 16x16 --init -> 32x32, consistent with the input",
    "denoise": "remove Gaussian noise from --init (--noise-level, or estimated)",
}


@polydiff.hookimpl
def register_modalities(register):
    from . import demo, evaluate, images, tasks

    register(polydiff.Modality(
        name="image", description="32x32 RGB images of coloured shapes, from text prompts",
        tasks=TASKS, plan=tasks.plan, write=images.write, default_backend="shapes-unet",
        formats=("png",), options=tasks.ImageOptions, max_elements=256 * 3 * 32 * 32,
        evaluate=evaluate.run, demo=demo.run, examples=tasks.examples))


@polydiff.hookimpl
def register_backends(register):
    from . import backend

    register(polydiff.Backend(
        "shapes-unet", "image", backend.load, prediction="v", devices=("cpu", "cuda"),
        checkpoint=str(backend.WEIGHTS_DIR / "model.safetensors"),
        description="text-conditioned UNet (2.2M parameters) trained on procedural shapes",
        train=backend.train))
