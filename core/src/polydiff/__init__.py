"""polydiff: a plugin-based multimodal diffusion framework.

Names are imported lazily so ``polydiff --help`` starts without importing torch.
"""
from __future__ import annotations

import importlib

from .contract import Backend, Encoder, LoadedModel, Modality, ModelSpace, Plan, StepInfo, Task
from .errors import InvalidInputError, NonFiniteError, PluginError, PolydiffError, UnknownNameError
from .hookspecs import hookimpl

__version__ = "0.1.0"

_LAZY = {
    # maths
    "NoiseSchedule": "schedules", "VPSchedule": "schedules", "DiscreteVP": "schedules", "Grid": "schedules", "MaskSchedule": "masked",
    "Spacing": "spacing", "SeededNoise": "noise",
    "as_denoiser": "denoisers", "guided": "denoisers", "x0_from": "denoisers", "target_for": "denoisers",
    "tune_steps": "step_grids", "teacher_paths": "distillation", "PathData": "distillation", "distill": "distillation",
    "sample": "loop", "Trajectory": "loop", "diffuse": "forward", "explain": "explaining", "build_grid": "loop", "after_step": "samplers",
    # editing
    "Constraint": "editing", "Replacement": "editing", "SDEdit": "editing", "FromNoisy": "editing",
    "Measurement": "editing",
    "Operator": "editing", "MaskOperator": "editing", "LinearOperator": "editing",
    "FunctionOperator": "editing",
    # generation
    "generate": "generation", "evaluate": "evaluation", "GenerateRequest": "request", "Result": "result", "Context": "generation",
    "regenerate": "reproduce",
    "load_encoder": "generation",
    "registered_models": "user_models", "add_model": "user_models", "remove_model": "user_models",
    # training and checkpoints
    "Trainer": "training", "TrainConfig": "training", "learning_rate": "training", "seeded_init": "training",
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "load_trained": "checkpoint",
    "CaptionedData": "captioned",
    # components
    "components": "registries", "register_plugin": "registries", "unregister_plugin": "registries",
    "load_plugins": "plugins",
}

__all__ = sorted(
    ["hookimpl", "Backend", "Encoder", "LoadedModel", "Modality", "ModelSpace", "Plan", "StepInfo", "Task", "PolydiffError",
     "InvalidInputError", "NonFiniteError", "PluginError", "UnknownNameError", *_LAZY]
)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'polydiff' has no attribute {name!r}")


def __dir__():
    return __all__
