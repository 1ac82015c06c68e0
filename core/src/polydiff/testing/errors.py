"""The kit's two outcomes besides success, shared by every check module."""
from __future__ import annotations

from typing import NoReturn


class ConformanceError(AssertionError):
    """A registration breaks polydiff's contract; the message names it and says how. An
    ``AssertionError``, so pytest shows it as a plain test failure."""


class CheckSkipped(Exception):
    """A check that cannot run here (no CUDA device, no example inputs); the message says why."""


def fail(message: str) -> NoReturn:
    raise ConformanceError(message)
