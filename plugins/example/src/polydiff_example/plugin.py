"""Example plugin: a 2-D "points" modality whose backend is an exact (analytic) denoiser, and an
extra sampler. It needs no trained weights, so it exercises ``generate`` end to end.

The hook implementations only; only polydiff's public API is used, as a third-party plugin would.
"""
import polydiff


@polydiff.hookimpl
def register_samplers(register) -> None:
    from .midpoint import midpoint

    register("midpoint", midpoint, order=2)


@polydiff.hookimpl
def register_modalities(register) -> None:
    from . import io, tasks

    register(polydiff.Modality(
        name="points2d",
        description="points in the plane from a mixture of four named clusters (toy modality)",
        tasks=tasks.TASKS, write=io.write, read=io.read, formats=("csv", "svg"),
        default_backend="points2d-exact", max_elements=2_000_000,
        picture=io.picture, picture_samples=2000))


@polydiff.hookimpl
def register_encoders(register) -> None:
    from . import encoders

    register(polydiff.Encoder("points2d-cluster", "condition", encoders.ClusterNames,
                              "cluster name -> index (-1: any cluster)", outputs=encoders.OUTPUTS,
                              examples=lambda: ["", "north", "the east cluster"]))


@polydiff.hookimpl
def register_backends(register) -> None:
    from . import backend

    register(polydiff.Backend("points2d-exact", "points2d", backend.load_exact, prediction="x0",
                              devices=("cpu", "cuda"),
                              description="closed-form E[x0 | x_t] of the cluster mixture"))
    register(polydiff.Backend("points2d-mlp", "points2d", backend.load_mlp, prediction="v",
                              devices=("cpu", "cuda"),
                              checkpoint=str(backend.WEIGHTS_DIR / "model.safetensors"),
                              description="small MLP trained with polydiff's trainer",
                              train=backend.train))
