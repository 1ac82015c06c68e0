"""The image plugin: data, checker, every task through generate, bad input, training smoke."""
import numpy as np
import polydiff
import pytest
import torch
from PIL import Image
from polydiff_image import data
from polydiff_image.checker import count_shapes, read_attributes


def test_captions_cover_the_documented_vocabulary():
    captions = data.all_captions()
    assert "a small red circle on the left" in captions and "a triangle" in captions
    assert len(captions) == 9 * 4 * 3 * 6


def test_data_is_seeded():
    a, ca, _ = data.batch(8, seed=5)
    b, cb, _ = data.batch(8, seed=5)
    assert np.array_equal(a, b) and ca == cb


def test_checker_reads_back_every_attribute_of_real_data():
    images, _, attrs = data.batch(300, seed=77)
    found = [read_attributes(torch.from_numpy(im)) for im in images]
    assert found == attrs


def test_checker_reports_an_empty_image():
    assert read_attributes(torch.zeros(3, 32, 32)) is None


def test_generate_follows_the_prompt(tmp_path):
    result = polydiff.generate("image", "a large red square on the left", n=2, seed=0, steps=20)
    files = result.save(tmp_path)
    assert {p.name for p in files} == {"generate-000.png", "generate-001.png", "grid.png", "metadata.json"}
    assert Image.open(tmp_path / "generate-000.png").size == (32, 32)
    found = [read_attributes(x) for x in result.outputs]
    assert sum(f is not None and f["colour"] == "red" and f["shape"] == "square" for f in found) >= 1
    assert result.metadata["checkpoint_sha256"] and len(result.metadata["checkpoint_sha256"]) == 64


def test_inpaint_keeps_the_unmasked_pixels():
    x = data.render("blue", "circle", "large", "center")
    mask = np.zeros((32, 32), np.float32)
    mask[:, 16:] = 1
    out = polydiff.generate("image", "a blue circle", task="inpaint", init=x.transpose(1, 2, 0), mask=mask,
                            seed=0, steps=8).outputs[0]
    assert torch.allclose(out[:, :, :16], torch.from_numpy(x)[:, :, :16], atol=1e-6)


def test_super_resolution_is_consistent_with_the_low_resolution_input():
    x = torch.from_numpy(data.render("yellow", "triangle", "large", "center"))
    low = torch.nn.functional.avg_pool2d(x[None], 4)[0]
    result = polydiff.generate("image", task="super-resolution", init=low.permute(1, 2, 0).numpy(), seed=0,
                               steps=8)
    # exact in model space ([-1, 1]); the PNG-bound output is additionally clipped to [0, 1]
    pooled = torch.nn.functional.avg_pool2d(result.samples, 4)[0]
    assert torch.allclose(pooled, low * 2 - 1, atol=1e-5)


def test_img2img_and_denoise_run():
    x = data.render("red", "circle", "large", "center").transpose(1, 2, 0)
    a = polydiff.generate("image", "a green circle", task="img2img", init=x, strength=0.5, seed=0, steps=6)
    noisy = np.clip(x + 0.1 * np.random.default_rng(0).standard_normal(x.shape), 0, 1).astype(np.float32)
    b = polydiff.generate("image", task="denoise", init=noisy, seed=0, steps=6)
    assert a.outputs[0].shape == b.outputs[0].shape == (3, 32, 32)


def test_noise_estimate_is_close_to_the_truth():
    from polydiff_image.tasks import estimate_noise

    x = torch.from_numpy(data.render("white", "square", "large", "center"))
    noisy = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert 0.07 < estimate_noise(noisy) < 0.13


@pytest.mark.parametrize("fields, needle", [
    (dict(task="inpaint", init="missing.png", mask="missing.png"), "init: no such file"),
    (dict(task="img2img", init=np.zeros((32, 32, 3), np.float32), strength=1.5), "strength"),
    (dict(task="img2img", init=np.zeros((32, 32, 3), np.float32), strength=0), "strength"),
    (dict(task="inpaint", init=np.zeros((32, 32, 3), np.float32), mask=np.zeros((16, 16), np.float32)), "mask: size"),
    (dict(task="super-resolution", init=np.zeros((12, 12, 3), np.float32)), "8 or 16"),
    (dict(task="img2img"), "init"),
    (dict(task="denoise", init=np.zeros((32, 32, 3)) + 2.0), "[0, 1]"),
    (dict(n=1000), "budget"),
])
def test_bad_input_is_a_clear_error(fields, needle):
    with pytest.raises(polydiff.PolydiffError) as info:
        polydiff.generate("image", "a red circle", steps=2, **fields)
    assert needle in str(info.value)


def test_unreadable_image_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(polydiff.InvalidInputError, match="init: cannot read"):
        polydiff.generate("image", task="img2img", init=str(bad), steps=2)


def test_training_smoke(tmp_path):
    from polydiff_image import backend

    path = backend.train(out=tmp_path, progress=False, steps=2, batch_size=4, checkpoint_every=None)
    tensors, config = polydiff.load_checkpoint(path)
    assert config["step"] == 2 and config["model_config"]["channels"] == backend.ARCH["channels"]
    model = backend.load("cpu", folder=tmp_path)
    cond = {"tokens": torch.zeros(1, backend.TOKENS, 384), "mask": torch.ones(1, backend.TOKENS)}
    out = model.net(torch.zeros(1, 3, 32, 32), torch.full((1,), 0.5), cond)
    assert out.shape == (1, 3, 32, 32)


def test_evaluator_quick_run_writes_its_report(tmp_path):
    report = polydiff.evaluate("image", out=tmp_path, quick=True)
    assert (tmp_path / "report.json").is_file() and "| colour |" in (tmp_path / "report.md").read_text()
    assert set(report["adherence"]["accuracy"]) == {"colour", "shape", "size", "position"}
    assert all(0.0 <= v <= 1.0 for v in report["adherence"]["accuracy"].values())
    assert set(report["paraphrased"]["accuracy"]) == {"colour", "shape", "size", "position"}
    assert 0.0 <= report["paraphrased"]["one_shape"] <= 1.0 and "paraphrased" in report["markdown"]
    assert report["editing"]["denoise"]["gain_db"] > 0      # beats the noisy input even in the smoke run


def test_denoise_of_a_noiseless_image_runs():
    """A flat image estimates as noiseless (level 0); denoise starts at the 8-bit floor instead
    of failing on log(0)."""
    flat = np.full((32, 32, 3), 0.5, np.float32)
    out = polydiff.generate("image", task="denoise", init=flat, seed=0, steps=2)
    assert out.metadata["resolved"]["steps"] == 2 and torch.isfinite(out.samples).all()


def test_checker_counts_one_shape_in_every_rendered_combination():
    combos = [(c, s, z, p) for c in data.COLOURS for s in data.SHAPES for z in data.SIZES for p in data.POSITIONS]
    found = [read_attributes(torch.from_numpy(data.render(*k))) for k in combos]
    assert found == [dict(zip(("colour", "shape", "size", "position"), k)) for k in combos]


def test_checker_refuses_two_shapes_and_noise():
    two = np.maximum(data.render("red", "circle", "small", "left"), data.render("blue", "square", "small", "right"))
    assert count_shapes(torch.from_numpy(two)) == 2 and read_attributes(torch.from_numpy(two)) is None
    noise = torch.from_numpy(np.random.default_rng(0).uniform(0, 1, (3, 32, 32)).astype(np.float32))
    assert read_attributes(noise) is None
    assert count_shapes(torch.zeros(3, 32, 32)) == 0
