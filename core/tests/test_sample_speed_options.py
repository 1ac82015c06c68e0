"""``sample``'s speed options (compile, autocast, channels_last) and its defaults.

The CPU runs exercise each code path; the CUDA test runs where a GPU is (marker ``cuda``)."""
from __future__ import annotations

import inspect

import polydiff
import pytest
import torch
from polydiff.errors import InvalidInputError
from polydiff.loop import DEFAULT_SAMPLER, DEFAULT_SPACING, DEFAULTS, sample
from polydiff.testing import GaussianMixture

# tiny tensors: one torch thread is fastest, and far faster on a busy machine
pytestmark = pytest.mark.usefixtures("polydiff_single_thread")


def _mixture():
    return GaussianMixture([[-2.0, -1.0, 0.5, 0.0], [2.0, 1.0, 0.0, -0.5]], [0.4, 0.6], 0.6, "vp-linear")


def test_defaults_are_the_module_constants():
    params = inspect.signature(sample).parameters
    assert params["sampler"].default is None and params["spacing"].default is None  # per process
    assert DEFAULTS["gaussian"] == (DEFAULT_SAMPLER, DEFAULT_SPACING)
    components = polydiff.components()
    for process, (sampler, spacing) in DEFAULTS.items():
        assert components.samplers[sampler].process == process and spacing in components.spacings
    x = sample(_mixture(), (2, 2, 2), steps=3)
    assert torch.equal(x, sample(_mixture(), (2, 2, 2), steps=3, sampler=DEFAULT_SAMPLER, spacing=DEFAULT_SPACING))


def test_compile_gives_the_same_samples():
    gm = _mixture()
    plain = sample(gm, (3, 2, 2), steps=6, seed=1)
    # the eager backend runs the compile path (dynamo tracing) without needing a C++ compiler
    compiled = sample(gm, (3, 2, 2), steps=6, seed=1, compile={"backend": "eager"})
    assert torch.allclose(plain, compiled, atol=1e-6)


def test_autocast_runs_the_denoiser_in_half_precision_and_keeps_the_state_in_float32():
    gm = _mixture()
    seen = []

    def denoiser(x, t, cond=None):
        seen.append(torch.is_autocast_enabled(x.device.type))
        return (torch.ones(4, 4, device=x.device) @ torch.eye(4, device=x.device)).sum() * 0 + gm(x, t)

    out = sample(denoiser, (2, 4), steps=4, autocast="bf16")
    assert seen and all(seen) and out.dtype == torch.float32
    assert torch.allclose(out, sample(gm, (2, 4), steps=4), atol=1e-5)
    with pytest.raises(InvalidInputError, match="autocast"):
        sample(gm, (2, 4), steps=4, autocast="int8")


def test_half_precision_denoiser_output_is_cast_back():
    gm = _mixture()
    out = sample(lambda x, t, c: gm(x, t).to(torch.bfloat16), (2, 4), steps=4)
    assert out.dtype == torch.float32


def test_channels_last_state():
    gm = _mixture()
    layouts = []

    def denoiser(x, t, cond=None):
        layouts.append(x.is_contiguous(memory_format=torch.channels_last))
        return gm(x, t)

    out = sample(denoiser, (2, 1, 2, 2), steps=5, channels_last=True)
    assert layouts and all(layouts)
    assert torch.allclose(out, sample(gm, (2, 1, 2, 2), steps=5), atol=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fast_path_matches_cpu():
    sch = polydiff.components().schedules["vp-linear"]

    def gaussian(x, t, cond=None):  # E[x0 | x_t] for x0 ~ N(0, I): alpha x (VP), on any device
        return sch.alpha(t).to(x.dtype).reshape(-1, *[1] * (x.dim() - 1)) * x

    cpu = sample(gaussian, (2, 4, 8, 8), steps=8, seed=3)
    gpu = sample(gaussian, (2, 4, 8, 8), steps=8, seed=3, device="cuda")
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-5)
    net = torch.nn.Conv2d(4, 4, 1).cuda().to(memory_format=torch.channels_last)

    def denoiser(x, t, cond=None):
        return gaussian(x, t) + 0 * net(x)

    out = sample(denoiser, (2, 4, 8, 8), steps=8, seed=3, device="cuda", autocast="bf16",
                 channels_last=True, compile=True)
    assert out.device.type == "cuda" and out.dtype == torch.float32
    assert torch.allclose(out.cpu(), cpu, atol=5e-2)
    graphs = sample(denoiser, (2, 4, 8, 8), steps=8, seed=3, device="cuda", sampler="unipc",
                    compile={"mode": "reduce-overhead"})  # CUDA graphs, with a multistep sampler
    assert torch.allclose(graphs.cpu(), cpu, atol=1e-4)
