"""Registers the video modality and its backend (hook implementations only). Prompts are encoded
by polydiff-text's ``minilm`` condition encoder, asked for by name."""
import polydiff


@polydiff.hookimpl
def register_modalities(register) -> None:
    from . import backend, demo, evaluate, io, tasks
    from .data import FRAMES, SIZE

    register(polydiff.Modality(
        name="video",
        description=f"{FRAMES}-frame {SIZE}x{SIZE} clips of coloured shapes in motion, from text prompts",
        tasks=tasks.TASKS, write=io.write, read=io.read, formats=("gif", "png"), tolerance=1 / 255,
        default_backend=backend.NAME, max_elements=16 * io.MAX_FRAMES * 3 * SIZE * SIZE,
        evaluate=evaluate.run, demo=demo.run, picture=io.picture))


@polydiff.hookimpl
def register_backends(register) -> None:
    from . import backend

    register(polydiff.Backend(name=backend.NAME, modality="video", load=backend.load, train=backend.train,
                              prediction=backend.RECIPE["prediction"], checkpoint=str(backend.CHECKPOINT),
                              devices=("cpu", "cuda"), description=backend.DESCRIPTION))
