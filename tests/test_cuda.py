"""CUDA paths; skipped cleanly on machines without a GPU (CI has none)."""
import polydiff
import pytest
import torch

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_auto_device_picks_cuda_and_seeding_is_per_sample():
    batch = polydiff.generate("points2d", n=4, steps=6, sampler="ddpm", seed=3)
    alone = polydiff.generate("points2d", n=1, steps=6, sampler="ddpm", seed=5)
    assert batch.metadata["resolved"]["device"] == "cuda"
    assert torch.allclose(batch.samples[2], alone.samples[0], atol=1e-5)


def test_image_backend_runs_on_cuda():
    result = polydiff.generate("image", "a red circle", n=2, steps=4, seed=0, device="cuda")
    assert result.outputs[0].shape == (3, 32, 32)
