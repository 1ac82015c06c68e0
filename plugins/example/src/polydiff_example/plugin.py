"""Example plugin: a 2-D "points" modality whose backend is an exact (analytic) denoiser, and an
extra sampler. It needs no trained weights, so it exercises ``generate`` end to end.

Only polydiff's public API is used, as a third-party plugin would.
"""
import polydiff

CLUSTERS = {"east": (2.5, 0.0), "north": (0.0, 2.5), "west": (-2.5, 0.0), "south": (0.0, -2.5)}
WEIGHTS = (0.4, 0.3, 0.2, 0.1)
STD = 0.35


@polydiff.hookimpl
def register_samplers(register):
    from .midpoint import midpoint

    register("midpoint", midpoint, order=2)


@polydiff.hookimpl
def register_modalities(register):
    from . import modality

    register(polydiff.Modality(
        name="points2d",
        description="points in the plane from a mixture of four named clusters (toy modality)",
        tasks={"generate": "sample points, optionally from one cluster named by the prompt",
               "inpaint": "given the x coordinate (--x), sample y"},
        plan=modality.plan,
        write=modality.write,
        default_backend="points2d-exact",
        formats=("csv", "png"),
        options=modality.PointsOptions,
        max_elements=2_000_000,
        examples=modality.examples,
        read=modality.read,
    ))


@polydiff.hookimpl
def register_encoders(register):
    from .modality import ClusterNames

    register(polydiff.Encoder("points2d-cluster", "condition", ClusterNames,
                              "cluster name -> index (-1: any cluster)",
                              examples=lambda: [None, "north", "the east cluster"]))


@polydiff.hookimpl
def register_backends(register):
    from . import backend, mlp

    register(polydiff.Backend("points2d-exact", "points2d", backend.load, prediction="x0",
                              devices=("cpu", "cuda"),
                              description="closed-form E[x0 | x_t] of the cluster mixture"))
    register(polydiff.Backend("points2d-mlp", "points2d", mlp.load, prediction="v",
                              devices=("cpu", "cuda"),
                              checkpoint=str(mlp.WEIGHTS_DIR / "model.safetensors"),
                              description="small MLP trained with polydiff's trainer",
                              train=mlp.train))
