"""The medical tasks on CUDA (the sparse Radon matrix and the FFT on the device); skipped
cleanly where there is no GPU (CI has none)."""
import polydiff
import pytest
import torch
from polydiff_medical import data, operators

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_mri_reconstruction_on_cuda_agrees_with_its_measurement():
    image = torch.from_numpy(data.phantom(3)[0])
    result = polydiff.generate("medical", task="reconstruct-mri", init=image.numpy(), steps=4, seed=0, device="cuda")
    assert result.metadata["resolved"]["device"] == "cuda"
    mask = operators.cartesian_mask(64, 4)
    out = torch.from_numpy(result.outputs[0][0])
    residual = (operators.fft2c(out) - operators.fft2c(image)) * mask
    assert residual.abs().max() < 0.05 * operators.fft2c(image).abs().max()


def test_ct_reconstruction_on_cuda_agrees_with_its_sinogram():
    image = torch.from_numpy(data.phantom(3)[0])[None].double()
    result = polydiff.generate("medical", task="reconstruct-ct", init=image[0].numpy(), views=18, steps=4, seed=0,
                               device="cuda")
    radon = operators.Radon(64, operators.angles_for(18))
    y = radon(image)
    out = torch.from_numpy(result.outputs[0][0])[None].double()
    assert (radon(out) - y).norm() < 0.2 * y.norm()
