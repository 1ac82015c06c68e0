"""The image tasks on a user's diffusers folder, end to end through ``polydiff.generate`` and
the CLI: guidance, inpainting and img2img in latent space, the pixel tasks on a pixel model,
PNGs written and the folder and its weights' hashes in the metadata."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import polydiff
import pytest
import torch
from PIL import Image
from polydiff.cli import main


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _picture(side):
    image = np.zeros((side, side, 3), np.float32)
    image[side // 4: 3 * side // 4, side // 4: 3 * side // 4, 0] = 1.0   # a red square
    return image


def test_generate_with_guidance_writes_pngs_and_records_the_model(sd_folder, tmp_path):
    result = polydiff.generate("image", "a red circle", backend="diffusers", model=str(sd_folder), n=2, steps=4,
                               guidance=5.0, seed=1)
    files = result.save(tmp_path / "out")
    pngs = [p for p in files if p.suffix == ".png" and p.name.startswith("generate")]
    assert len(pngs) == 2 and Image.open(pngs[0]).size == (32, 32)
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["model"]["folder"] == str(sd_folder.resolve())
    assert meta["model"]["weights_sha256"]["unet/diffusion_pytorch_model.safetensors"] == \
        _sha(sd_folder / "unet" / "diffusion_pytorch_model.safetensors")
    assert set(meta["model"]["weights_sha256"]) == {"unet/diffusion_pytorch_model.safetensors",
                                                    "vae/diffusion_pytorch_model.safetensors",
                                                    "text_encoder/model.safetensors"}
    assert meta["resolved"]["guidance"] == 5.0 and meta["resolved"]["schedule"] == "discrete-vp"
    unguided = polydiff.generate("image", "a red circle", backend="diffusers", model=str(sd_folder), n=2, steps=4,
                                 guidance=1.0, seed=1)
    assert not torch.equal(unguided.samples, result.samples)   # guidance changes the latents


def test_inpaint_keeps_the_unmasked_latents(sd_folder):
    mask = np.zeros((32, 32), np.float32)
    mask[:, 16:] = 1          # regenerate the right half
    init = _picture(32)
    result = polydiff.generate("image", "a blue circle", task="inpaint", backend="diffusers", model=str(sd_folder),
                               init=init, mask=mask, steps=4, resample=1, seed=2)
    model = polydiff.components().backends["diffusers"].load("cpu", model=str(sd_folder))
    known = model.space.encode(torch.as_tensor(init).permute(2, 0, 1)[None])
    assert result.samples.shape == (1, 4, 8, 8)
    assert torch.allclose(result.samples[..., :4], known[..., :4], atol=1e-5)   # kept latent cells unchanged
    assert not torch.allclose(result.samples[..., 4:], known[..., 4:], atol=1e-2)


def test_img2img_strength_moves_away_from_the_input(sd_folder):
    model = polydiff.components().backends["diffusers"].load("cpu", model=str(sd_folder))
    init = _picture(32)
    known = model.space.encode(torch.as_tensor(init).permute(2, 0, 1)[None])
    distance = {}
    for strength in (0.2, 1.0):
        result = polydiff.generate("image", "a blue circle", task="img2img", backend="diffusers", model=str(sd_folder),
                                   init=init, strength=strength, steps=5, seed=3)
        distance[strength] = float((result.samples - known).abs().mean())
    assert distance[0.2] < distance[1.0]


def test_pixel_tasks_run_on_a_pixel_model(pixel_folder):
    low = _picture(16).reshape(8, 2, 8, 2, 3).mean(axis=(1, 3))
    result = polydiff.generate("image", task="super-resolution", backend="diffusers", model=str(pixel_folder),
                               init=low, steps=3, seed=0)
    assert result.outputs[0].shape == (3, 16, 16)
    noisy = np.clip(_picture(16) + 0.05, 0, 1)
    result = polydiff.generate("image", task="denoise", backend="diffusers", model=str(pixel_folder), init=noisy,
                               noise_level=0.05, steps=3, seed=0)
    assert result.outputs[0].shape == (3, 16, 16)


def test_a_seed_fixes_a_sample_whatever_the_batch(sd_folder):
    one = polydiff.generate("image", "a red circle", backend="diffusers", model=str(sd_folder), n=1, steps=3, seed=7)
    three = polydiff.generate("image", "a red circle", backend="diffusers", model=str(sd_folder), n=3, steps=3, seed=5)
    # CPU kernels round differently by batch size: equal to float32 rounding, relative to the values' size
    a, b = one.samples[0], three.samples[2]
    assert float((a - b).abs().max() / b.abs().max()) < 1e-5


def test_cli_with_a_registered_model_name(sd_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POLYDIFF_HOME", str(tmp_path / "home"))
    assert main_exit(["models", "add", "tiny-sd", str(sd_folder)]) == 0
    assert main_exit(["generate", "image", "a green square", "--backend", "diffusers", "--model", "tiny-sd",
                      "--steps", "3", "--sampler", "dpmpp_2m", "-o", str(tmp_path / "o"), "--quiet"]) == 0
    assert (tmp_path / "o" / "generate-000.png").is_file()
    meta = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert meta["request"]["model"] == str(sd_folder.resolve())   # recorded as the folder, so regenerate finds it
    capsys.readouterr()
    assert main_exit(["models", "list"]) == 0
    assert "tiny-sd" in capsys.readouterr().out


def main_exit(argv) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYDIFF_HOME", str(tmp_path / "polydiff-home"))
