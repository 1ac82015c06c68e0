"""Small helpers the check modules share: the registries, devices, one torch thread, and
describing or comparing values in messages."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..registries import Components

import functools

import numpy as np
import torch

from .errors import CheckSkipped


def components() -> Components:
    from ..registries import components

    return components()


def available_devices() -> list[str]:
    """The devices the kit checks on: ``cpu``, plus ``cuda`` when a CUDA device is present."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def need_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckSkipped("no CUDA device here")


def single_thread(fn) -> Callable:
    """Run with one torch thread: the kit's tensors are tiny, and threads only cost time
    (ten times more on a busy machine)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        if threads == 1:
            return fn(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
    return wrapper


def describe(value) -> str:
    if torch.is_tensor(value):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def as_array(value) -> np.ndarray:
    if torch.is_tensor(value):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    return np.asarray(value)
