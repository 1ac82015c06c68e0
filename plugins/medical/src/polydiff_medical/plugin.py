"""Registers the medical modality and its backend (hook implementations only)."""
import polydiff


@polydiff.hookimpl
def register_modalities(register) -> None:
    from . import backend, demo, evaluate, io, tasks
    from .data import SIZE

    register(polydiff.Modality(
        name="medical",
        description=f"{SIZE}x{SIZE} MRI/CT slices: reconstruction, segmentation with uncertainty, enhancement",
        tasks=tasks.TASKS, write=io.write, read=io.read, formats=("nii.gz", "npy", "png"), tolerance=1e-6,
        default_backend=backend.NAME, max_elements=256 * 2 * SIZE * SIZE, picture=io.picture,
        evaluate=evaluate.run, demo=demo.run))


@polydiff.hookimpl
def register_backends(register) -> None:
    from . import backend

    register(polydiff.Backend(name=backend.NAME, modality="medical", load=backend.load, train=backend.train,
                              prediction=backend.RECIPE["prediction"], checkpoint=str(backend.CHECKPOINT),
                              devices=("cpu", "cuda"), description=backend.DESCRIPTION))
