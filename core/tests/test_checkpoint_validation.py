"""Checkpoint loading trusts nothing unchecked: the sha256 is verified whenever model.json records
one; a tensors file whose id differs from model.json's loads only if its own digest proves it
intact; the trainer's fields and `model_config` are checked (types, keys, size, shapes) before a
network is built; resume state is validated; absolute paths inside the folder are stored relative."""
from __future__ import annotations

import json
import shutil

import polydiff
import pytest
import torch
from _training_helpers import make_trainer
from polydiff.checkpoint import MAX_PARAMETERS, check_model_config, load_checkpoint, save_checkpoint
from polydiff.errors import InvalidInputError
from polydiff_example.backend import WEIGHTS_DIR, PointsMLP
from pydantic import BaseModel, ConfigDict, Field

pytestmark = pytest.mark.usefixtures("polydiff_single_thread")


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text, text
    return text


def edit_json(folder, name="model", **changes):
    path = folder / f"{name}.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


@pytest.fixture
def shipped(tmp_path):
    """A copy of the example plugin's shipped checkpoint (a real Trainer checkpoint)."""
    folder = tmp_path / "mlp"
    shutil.copytree(WEIGHTS_DIR, folder)
    return folder


def test_corrupt_bytes_fail_the_recorded_sha256(shipped):
    st = shipped / "model.safetensors"
    data = bytearray(st.read_bytes())
    data[-1000:] = bytes(1000)
    st.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError) as info:
        load_checkpoint(shipped)
    assert "sha256 does not match model.json" in one_line(info)


def test_another_save_with_a_valid_digest_loads_with_one_line(tmp_path, capsys):
    save_checkpoint(tmp_path, {"w": torch.zeros(3)}, {"step": 1})
    old_json = (tmp_path / "model.json").read_text()
    save_checkpoint(tmp_path, {"w": torch.ones(3)}, {"step": 2})
    (tmp_path / "model.json").write_text(old_json)  # as if the second rename never happened
    tensors, config = load_checkpoint(tmp_path)
    assert torch.equal(tensors["w"], torch.ones(3)) and config == {"step": 2}
    assert "a save was interrupted" in capsys.readouterr().err


def test_a_mismatched_id_with_corrupt_tensors_is_an_error(tmp_path):
    save_checkpoint(tmp_path, {"w": torch.zeros(64)}, {"step": 1})
    old_json = (tmp_path / "model.json").read_text()
    save_checkpoint(tmp_path, {"w": torch.ones(64)}, {"step": 2})
    (tmp_path / "model.json").write_text(old_json)
    st = tmp_path / "model.safetensors"
    data = bytearray(st.read_bytes())
    data[-40:] = bytes(40)  # inside the tensor data, the header left intact
    st.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError) as info:
        load_checkpoint(tmp_path)
    assert "inconsistent checkpoint" in one_line(info) and "cannot be verified" in str(info.value)


def test_a_mismatched_id_without_a_digest_is_an_error(tmp_path):
    from safetensors.torch import save_file

    save_checkpoint(tmp_path, {"w": torch.zeros(3)}, {"step": 1})
    save_file({"w": torch.ones(3)}, str(tmp_path / "model.safetensors"),
              metadata={"polydiff_id": "f" * 32, "polydiff_config": json.dumps({"step": 9})})
    with pytest.raises(InvalidInputError, match="cannot be verified"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("changes, field", [
    ({"step": -100}, "step"),
    ({"step": "3"}, "step"),
    ({"step": True}, "step"),
    ({"world_size": 0}, "world_size"),
    ({"prediction": "bogus"}, "prediction"),
    ({"schedule": ""}, "schedule"),
    ({"t_range": [0, 2]}, "t_range"),
    ({"mask_id": -1}, "mask_id"),
    ({"model_config": [1, 2]}, "model_config"),
    ({"model_config": {"a": [[[[[[1]]]]]]}}, "model_config.a[0][0][0][0]"),
    ({"model_config": {"hidden": float("nan")}}, "model_config.hidden"),
    ({"optimizer": {"param_groups": "all"}}, "optimizer"),
    ({"_checkpoint": {"id": "x", "sha256": "not-hex"}}, "_checkpoint"),
])
def test_bad_trainer_fields_are_one_line_naming_the_field(shipped, changes, field):
    edit_json(shipped, **changes)
    with pytest.raises(InvalidInputError) as info:
        load_checkpoint(shipped)
    assert f"field {field!r}" in one_line(info), info.value


@pytest.mark.parametrize("model_config, message", [
    ({"hidden": 200000}, "over the limit"),
    ({"hidden": 128, "bogus": 1}, "unknown key 'bogus'"),
    ({"hidden": "big"}, "'hidden' must be like its default 128"),
    ({"hidden": 2.5}, "'hidden' must be like its default 128"),
    ({"hidden": 64}, "tensor 'embed.weight' is (5, 128) in the checkpoint, (5, 64) in the network"),
])
def test_model_config_is_checked_before_the_network_is_built(shipped, model_config, message):
    edit_json(shipped, model_config=model_config)
    with pytest.raises(InvalidInputError) as info:
        polydiff.load_trained(shipped, PointsMLP, "cpu")
    assert "model_config" in one_line(info) and message in str(info.value), info.value


def test_the_shipped_checkpoint_still_loads(shipped):
    loaded = polydiff.load_trained(shipped, PointsMLP, "cpu")
    assert loaded.config["model_config"] == {"hidden": 128}


def test_a_declared_config_model_bounds_the_values(shipped):
    class MLPConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        hidden: int = Field(128, ge=8, le=1024)

    edit_json(shipped, model_config={"hidden": 4096})
    with pytest.raises(InvalidInputError) as info:
        polydiff.load_trained(shipped, PointsMLP, "cpu", config_model=MLPConfig)
    assert "hidden" in one_line(info) and "1024" in str(info.value)


def test_the_size_limit_needs_no_memory():
    # a 10^11-value network is refused from its meta-device build in well under a second
    with pytest.raises(InvalidInputError, match=f"over the limit of {MAX_PARAMETERS:,}"):
        check_model_config(PointsMLP, {"hidden": 320_000})


def test_resume_state_is_validated_in_one_line(tmp_path):
    make_trainer(tmp_path, steps=2, checkpoint_every=None).fit()
    edit_json(tmp_path, "train_state", step=-100)
    with pytest.raises(InvalidInputError) as info:
        make_trainer(tmp_path, steps=4, checkpoint_every=None).fit()
    assert "field 'step'" in one_line(info) and "train_state.json" in str(info.value)


def test_absolute_paths_inside_the_folder_are_recorded_relative(tmp_path):
    folder = tmp_path / "run"
    save_checkpoint(folder, {"w": torch.zeros(1)}, {"train": {"out": str(folder.resolve()),
                                                              "data": str(folder / "data" / "x.bin"),
                                                              "elsewhere": "/usr/share"}})
    recorded = json.loads((folder / "model.json").read_text())["train"]
    assert recorded == {"out": ".", "data": "data/x.bin", "elsewhere": "/usr/share"}
    _, config = load_checkpoint(folder)
    assert config["train"]["out"] == "."


def test_a_trainer_checkpoint_records_no_absolute_out(tmp_path):
    make_trainer(tmp_path.resolve(), steps=1, checkpoint_every=None).fit()
    for name in ("model.json", "train_state.json"):
        assert str(tmp_path.resolve()) not in (tmp_path / name).read_text(), name


def test_only_checkpoints_shipped_with_their_builder_skip_the_meta_build(tmp_path):
    """A checkpoint inside the package that defines ``build`` is as trusted as that code, so
    load_trained skips the meta-device pre-check for it (the real load still checks shapes);
    any other folder gets it."""
    from pathlib import Path

    from polydiff import checkpoint

    home = Path(checkpoint.__file__).parent
    assert checkpoint._ships_with(checkpoint.load_trained, home / "weights" / "some-model")
    assert not checkpoint._ships_with(checkpoint.load_trained, tmp_path)
    assert not checkpoint._ships_with(checkpoint.load_trained, home.parent / "elsewhere")
