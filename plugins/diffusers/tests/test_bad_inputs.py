"""A folder the diffusers backend cannot run is refused before any sampling, in one line that
names the file or the cause; in the CLI with a non-zero exit, no traceback and no output."""
from __future__ import annotations

import json
import shutil

import numpy as np
import polydiff
import pytest
from polydiff.cli import main


def refusal(model, **fields) -> str:
    with pytest.raises(polydiff.PolydiffError) as caught:
        polydiff.generate("image", "a red circle", backend="diffusers", model=str(model), steps=2, **fields)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def copy(folder, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_a_missing_folder(tmp_path):
    assert "neither a folder nor a registered model name" in refusal(tmp_path / "nope")


def test_a_folder_without_model_index(tmp_path):
    (tmp_path / "unet").mkdir()
    assert "no model_index.json" in refusal(tmp_path)


def test_model_index_that_is_not_json(pixel_folder, tmp_path):
    folder = copy(pixel_folder, tmp_path)
    (folder / "model_index.json").write_text("{not json")
    assert "model_index.json: not readable JSON" in refusal(folder)


def test_an_unsupported_pipeline(pixel_folder, tmp_path):
    folder = copy(pixel_folder, tmp_path)
    (folder / "model_index.json").write_text(json.dumps(
        {"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"],
         "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"]}))
    message = refusal(folder)
    assert "FluxPipeline (denoiser FluxTransformer2DModel) is not supported" in message
    assert "Stable Diffusion 1.x/2.x" in message   # says what is supported


@pytest.mark.parametrize("changes, needle", [
    ({"beta_schedule": "exponential"}, "beta_schedule 'exponential' cannot be mapped"),
    ({"prediction_type": "flow"}, "prediction_type 'flow' is not one of"),
    ({"rescale_betas_zero_snr": True}, "rescale_betas_zero_snr"),
    ({"trained_betas": [0.5, 0.7, 1.5]}, "the betas give no usable schedule"),
])
def test_a_scheduler_config_that_cannot_be_mapped(pixel_folder, tmp_path, changes, needle):
    folder = copy(pixel_folder, tmp_path)
    edit_json(folder / "scheduler" / "scheduler_config.json", **changes)
    message = refusal(folder)
    assert needle in message and "scheduler_config.json" in message


def test_a_flow_matching_scheduler_is_named(pixel_folder, tmp_path):
    folder = copy(pixel_folder, tmp_path)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}))
    assert "FlowMatchEulerDiscreteScheduler defines no betas" in refusal(folder)


def test_pickle_weights_are_refused_with_how_to_convert(tmp_path):
    from conftest import tiny_pixel_pipeline

    folder = tmp_path / "pickled"
    tiny_pixel_pipeline().save_pretrained(folder, safe_serialization=False)
    assert (folder / "unet" / "diffusion_pytorch_model.bin").is_file()
    message = refusal(folder)
    assert "diffusion_pytorch_model.bin is a pickle" in message and "save_pretrained" in message


def test_weights_that_do_not_fit_the_config(pixel_folder, tmp_path):
    folder = copy(pixel_folder, tmp_path)
    edit_json(folder / "unet" / "config.json", block_out_channels=[32, 64])
    assert "does not load as UNet2DModel" in refusal(folder)


def test_an_inpainting_unet_with_extra_input_channels(sd_folder, tmp_path):
    import torch
    from diffusers import UNet2DConditionModel

    folder = copy(sd_folder, tmp_path)
    config = dict(UNet2DConditionModel.load_config(folder / "unet"), in_channels=9)
    torch.manual_seed(0)
    UNet2DConditionModel.from_config(config).save_pretrained(folder / "unet")
    assert "takes 9 channels and returns 4" in refusal(folder)


def test_an_init_image_of_the_wrong_size(sd_folder):
    message = refusal(sd_folder, task="img2img", init=np.zeros((16, 16, 3), np.float32))
    assert message == "init: expected a 32x32 image, got 16x16"


def test_pixel_tasks_are_refused_on_a_latent_model(sd_folder):
    message = refusal(sd_folder, task="super-resolution", init=np.zeros((16, 16, 3), np.float32))
    assert "super-resolution constrains pixels" in message and "latent" in message


def test_model_is_required_and_only_where_a_backend_takes_one(sd_folder):
    with pytest.raises(polydiff.InvalidInputError, match="give --model FOLDER"):
        polydiff.generate("image", "a red circle", backend="diffusers")
    with pytest.raises(polydiff.InvalidInputError, match="takes no --model"):
        polydiff.generate("image", "a red circle", model=str(sd_folder))


def test_cli_refusal_is_one_line_with_no_output_left(pixel_folder, tmp_path, capsys):
    folder = copy(pixel_folder, tmp_path)
    edit_json(folder / "scheduler" / "scheduler_config.json", beta_schedule="exponential")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as caught:
        main(["generate", "image", "--backend", "diffusers", "--model", str(folder), "-o", str(out), "--quiet"])
    assert caught.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error:") and "beta_schedule 'exponential'" in err and len(err.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYDIFF_HOME", str(tmp_path / "polydiff-home"))
