"""The operators: exact adjoints, the FFT unitary, the Radon transform equal to
scikit-image's, sampling masks as asked, and projections that make the data agree."""
import numpy as np
import polydiff
import pytest
import torch
from polydiff_medical import data, operators


def test_the_radon_adjoint_is_exact():
    radon = operators.Radon(data.SIZE, operators.angles_for(18))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, data.SIZE, data.SIZE, generator=g, dtype=torch.float64)
    y = torch.randn(3, 18, data.SIZE, generator=g, dtype=torch.float64)
    lhs, rhs = float((radon(x) * y).sum()), float((x * radon.T(y).double()).sum())
    assert abs(lhs - rhs) <= 1e-5 * abs(lhs)


@pytest.mark.parametrize("views", [1, 18, 36, 180])
def test_the_radon_transform_is_scikit_images(views):
    from skimage.transform import radon as skimage_radon

    image = data.phantom(3)[0]
    theta = operators.angles_for(views)
    ours = operators.Radon(data.SIZE, theta)(torch.from_numpy(image)[None].double())[0].numpy()
    reference = skimage_radon(image.astype(np.float64), theta=theta.numpy(), circle=True).T
    assert np.abs(ours - reference).max() <= 1e-4 * np.abs(reference).max()


def test_the_centred_fft_is_unitary_and_inverted():
    x = torch.from_numpy(data.batch(2, 5)[0])
    k = operators.fft2c(x)
    assert torch.allclose((k.abs() ** 2).sum(), (x**2).sum().to(torch.float32), rtol=1e-5)
    assert (operators.ifft2c(k).real - x).abs().max() < 1e-5
    # a centred transform: the DC term sits in the middle
    assert int(k[0].abs().argmax()) == (data.SIZE // 2) * data.SIZE + data.SIZE // 2


@pytest.mark.parametrize("acceleration", [1, 2, 4, 8])
def test_a_cartesian_mask_keeps_whole_lines_and_the_centre(acceleration):
    mask = operators.cartesian_mask(64, acceleration, centre=0.08, seed=3)
    columns = mask[0]
    assert torch.equal(mask, columns.expand(64, -1))             # whole phase-encode lines
    assert abs(int(columns.sum()) - 64 / acceleration) <= 1
    assert torch.equal(columns[1:], columns[1:].flip(0))         # symmetric about the centre
    assert columns[32 - 2:32 + 3].all()                          # 5 central lines (8 % of 64)
    assert torch.equal(mask, operators.cartesian_mask(64, acceleration, seed=3))


@pytest.mark.parametrize("acceleration, needle", [(0.5, "acceleration"), (float("nan"), "acceleration")])
def test_an_acceleration_below_one_is_refused(acceleration, needle):
    with pytest.raises(polydiff.InvalidInputError, match=needle):
        operators.cartesian_mask(64, acceleration)


def _model_space(image):
    return torch.stack([torch.as_tensor(image), torch.zeros_like(torch.as_tensor(image))])[None] * 2 - 1


def test_the_kspace_projection_puts_the_measured_lines_back():
    truth, guess = data.phantom(1)[0], data.phantom(2)[0]
    mask = operators.cartesian_mask(64, 4)
    op = operators.KSpaceConsistency(mask)
    y = op(_model_space(truth))
    projected = op.project(_model_space(guess), y)
    assert (op(projected) - y).abs().max() < 1e-4                   # the measurement now agrees
    assert torch.equal(projected[:, 1], _model_space(guess)[:, 1])  # the mask channel is left alone


def test_the_sinogram_projection_moves_towards_the_data():
    truth, guess = data.phantom(1)[0], data.phantom(2)[0]
    op = operators.SinogramConsistency(operators.Radon(64, operators.angles_for(18)))
    y = op(_model_space(truth))
    before = (op(_model_space(guess)) - y).norm()
    after = (op(op.project(_model_space(guess), y)) - y).norm()
    assert after < 0.05 * before


def test_the_downsampling_projection_matches_block_averages_exactly():
    truth, guess = data.phantom(1)[0], data.phantom(2)[0]
    op = operators.DownsampleConsistency(2)
    y = op(_model_space(truth))
    assert (op(op.project(_model_space(guess), y)) - y).abs().max() < 1e-6
