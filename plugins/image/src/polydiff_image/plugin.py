"""Registers the image modality and its backend (the hook implementations only). Prompts are
encoded by the ``minilm`` condition encoder of polydiff-text, asked for by name."""
import polydiff


@polydiff.hookimpl
def register_modalities(register) -> None:
    from . import demo, evaluate, io, tasks

    register(polydiff.Modality(
        name="image", description="32x32 RGB images of coloured shapes, from text prompts",
        tasks=tasks.TASKS, write=io.write, read=io.read, formats=("png",), tolerance=1 / 255,
        default_backend="shapes-unet", max_elements=256 * 3 * 32 * 32,
        evaluate=evaluate.run, demo=demo.run, picture=io.picture))


@polydiff.hookimpl
def register_backends(register) -> None:
    from . import backend, student

    register(polydiff.Backend(
        "shapes-unet", "image", backend.load, prediction="v", devices=("cpu", "cuda"),
        checkpoint=str(backend.WEIGHTS_DIR / "model.safetensors"),
        description="text-conditioned UNet (2.2M parameters) trained on procedural shapes",
        train=backend.train))
    register(polydiff.Backend(
        "shapes-turbo", "image", student.load, prediction="v", devices=("cpu", "cuda"),
        checkpoint=str(student.WEIGHTS_DIR / "model.safetensors"),
        description="shapes-unet distilled into 4 steps without guidance (4 calls per image, not 40)",
        train=student.train))
