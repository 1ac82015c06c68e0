"""polydiff's pytest plugin (entry point ``pytest11``), active wherever polydiff is installed.

Fixtures for testing polydiff plugins; see ``polydiff.testing`` for the checks themselves.
Nothing heavy is imported until a fixture is used, so pytest starts as fast as without it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polydiff.registries import Components
    from polydiff.testing.oracle import GaussianMixture
    from polydiff.testing.report import Report

import pytest


@pytest.fixture(scope="session")
def polydiff_components() -> Components:
    """Everything the installed plugins registered: ``.samplers``, ``.schedules``, ``.spacings``,
    ``.modalities``, ``.encoders``, ``.backends`` (name -> spec; ``.origin[name]`` is the plugin)."""
    from polydiff.registries import components

    return components()


@pytest.fixture
def polydiff_mixture() -> GaussianMixture:
    """A ``GaussianMixture`` oracle (three overlapping 2-D Gaussians, ``vp-linear`` schedule) whose
    exact denoiser is ``polydiff_mixture.denoiser`` (also the object itself)."""
    from polydiff.testing import default_mixture

    return default_mixture()


@pytest.fixture
def polydiff_separated_mixture() -> GaussianMixture:
    """A ``GaussianMixture`` with three well-separated 2-D components (std 0.5), for checking
    sample statistics: a sample's nearest mean is its component."""
    from polydiff.testing import separated_mixture

    return separated_mixture()


@pytest.fixture
def polydiff_devices() -> list[str]:
    """The devices worth checking here: ``["cpu"]``, plus ``"cuda"`` when present."""
    from polydiff.testing import available_devices

    return available_devices()


@pytest.fixture
def polydiff_single_thread() -> Iterator[None]:
    """Run the test with one torch thread (fastest for tiny tensors, and kind to a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def polydiff_check() -> Callable[..., Report]:
    """``polydiff.testing.check_plugin``: ``polydiff_check("my-plugin")`` checks everything the
    plugin registered and fails the test with a readable report if something is wrong."""
    from polydiff.testing import check_plugin

    return check_plugin
