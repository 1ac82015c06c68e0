"""The video plugin: data, checker (positives and negatives), files, every task's constraint,
bad input, training and evaluator smoke runs."""
from types import SimpleNamespace

import numpy as np
import polydiff
import pytest
import torch
from PIL import Image
from polydiff_video import data, io
from polydiff_video.checker import read_clip
from polydiff_video.tasks import SharedNoiseSDEdit, example_clip


def _clip(colour="red", shape="circle", motion="right", seed=0):
    video, facts = data.clip(colour, shape, motion, np.random.default_rng(seed))
    return torch.from_numpy(video), facts


def test_captions_cover_the_vocabulary():
    captions = data.captions()
    assert "a red circle moving to the right" in captions and "a shape growing" in captions
    assert "a blue square turning yellow" in captions and "" in captions
    assert len(captions) == 9 * 4 * (1 + 6 + 8) + 1


def test_data_is_seeded_and_moves():
    a, ca, fa = data.batch(6, seed=5)
    b, cb, fb = data.batch(6, seed=5)
    assert np.array_equal(a, b) and ca == cb and fa == fb
    assert a.shape == (6, data.FRAMES, 3, data.SIZE, data.SIZE) and a.min() >= 0 and a.max() <= 1
    assert not np.array_equal(data.batch(6, seed=6)[0], a)
    for clip in a:  # no clip is its last frame repeated
        assert np.abs(clip[-1] - clip[-2]).max() > 0.05


def test_sliding_shapes_bounce_off_the_walls():
    track = data.bounce(20.0, 3.0, 5.0, 27.0, 8)
    assert track.max() <= 27.0 and track.min() >= 5.0
    assert track[1] > track[0] and track[-1] < track.max()  # went right, came back


def test_checker_reads_back_real_clips():
    clips, _, facts = data.batch(120, seed=77, leave_out=0, blank=0)
    for clip, f in zip(clips, facts):
        found = read_clip(torch.from_numpy(clip))
        assert (found["colour"], found["shape"], found["motion"]) == (f["colour"], f["shape"], f["motion"])
        if f["motion"] == "turn":
            assert found["target"] == f["target"]


def test_checker_negatives():
    moving, _ = _clip("red", "circle", "right")
    static = moving[:1].expand(data.FRAMES, -1, -1, -1)
    assert read_clip(static)["motion"] == "static"               # a still clip is not "moving right"
    assert read_clip(moving.flip(0))["motion"] != "right"         # played backwards it is not either
    blue, _ = _clip("blue", "circle", "right")
    assert read_clip(blue)["colour"] != "red"                     # a wrong colour is rejected
    square, _ = _clip("red", "square", "right")
    assert read_clip(square)["shape"] != "circle"
    assert read_clip(torch.zeros(data.FRAMES, 3, 32, 32)) is None  # nothing there


def test_write_then_read_round_trips(tmp_path):
    result = polydiff.generate("video", "a red circle moving to the right", n=2, seed=0, steps=2)
    files = result.save(tmp_path)
    names = {p.name for p in files}
    assert {"generate-000.gif", "generate-000.png", "generate-001.gif", "metadata.json"} <= names
    assert Image.open(tmp_path / "generate-000.png").size == (32 * data.FRAMES, 32)
    back = io.read(files)
    assert len(back) == 2 and all((b - o).abs().max() <= 1 / 255 + 1e-6 for b, o in zip(back, result.outputs))
    gif = io.read_clip(tmp_path / "generate-000.gif")
    assert gif.shape == (data.FRAMES, 3, 32, 32)
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_inputs_from_gif_folder_and_npy(tmp_path):
    clip, _ = _clip()
    io.save_gif(clip, tmp_path / "c.gif")
    assert (io.read_clip(tmp_path / "c.gif") - clip).abs().max() < 0.05
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, frame in enumerate(io.to_uint8(clip)):
        Image.fromarray(frame).save(folder / f"{k:02d}.png")
    assert (io.read_clip(folder) - clip).abs().max() <= 1 / 255
    np.save(tmp_path / "c.npy", clip.numpy())
    assert torch.equal(io.read_clip(tmp_path / "c.npy"), clip)


def test_predict_keeps_the_given_frames_bit_exact():
    clip = example_clip()
    out = polydiff.generate("video", task="predict", init=clip[:4], frames=4, seed=0, steps=3).outputs[0]
    assert out.shape == (8, 3, 32, 32) and torch.equal(out[:4], torch.from_numpy(clip[:4]).permute(0, 3, 1, 2))
    back = polydiff.generate("video", task="predict", init=clip[5:], frames=2, backward=True, seed=0,
                             steps=3).outputs[0]
    assert back.shape == (5, 3, 32, 32) and torch.equal(back[2:], torch.from_numpy(clip[5:]).permute(0, 3, 1, 2))


def test_interpolate_slow_motion_and_speed_up():
    clip = torch.from_numpy(example_clip()).permute(0, 3, 1, 2)
    frames = clip.permute(0, 2, 3, 1).numpy()
    slow = polydiff.generate("video", task="interpolate", init=frames[::2], factor=2, seed=0, steps=3).outputs[0]
    assert slow.shape[0] == 7 and torch.equal(slow[::2], clip[::2])
    fast = polydiff.generate("video", task="interpolate", init=frames, factor=0.5, seed=0, steps=2).outputs[0]
    assert torch.equal(fast, clip[::2])                              # an integer speed-up only drops frames
    odd = polydiff.generate("video", task="interpolate", init=frames, factor=2 / 3, seed=0, steps=2)
    assert odd.outputs[0].shape[0] == 5 and odd.metadata["info"]["grid"] == [2, 3]
    assert torch.equal(odd.outputs[0][::2], clip[0:7:3])             # times 0, 3, 6 are input frames


def test_edit_regenerates_only_the_span():
    clip = example_clip()
    src = torch.from_numpy(clip).permute(0, 3, 1, 2)
    out = polydiff.generate("video", "a blue square moving to the right", task="edit", init=clip, start=2, end=5,
                            seed=0, steps=3).outputs[0]
    assert torch.equal(out[:2], src[:2]) and torch.equal(out[5:], src[5:]) and not torch.equal(out[2:5], src[2:5])


def test_generate_any_length_and_style():
    long = polydiff.generate("video", "a green square moving up", frames=13, seed=0, steps=2).outputs[0]
    short = polydiff.generate("video", "a green square moving up", frames=3, seed=0, steps=2).outputs[0]
    assert long.shape == (13, 3, 32, 32) and short.shape == (3, 3, 32, 32)
    styled = polydiff.generate("video", "a blue circle moving to the right", task="style", init=example_clip(),
                               strength=0.5, seed=0, steps=2)
    assert styled.outputs[0].shape == (8, 3, 32, 32) and torch.isfinite(styled.samples).all()


def test_style_noise_is_shared_across_frames():
    init = torch.zeros(2, 8, 3, 4, 4)
    z = torch.randn(2, 8, 3, 4, 4)
    x = SharedNoiseSDEdit(init, 0.5).start(z, SimpleNamespace(alpha=[0.6], sigma=[0.8]))
    assert torch.equal(x[:, 3], x[:, 0]) and not torch.equal(x[0, 0], x[1, 0])


@pytest.mark.parametrize("fields, needle", [
    (dict(task="predict", init="missing.gif"), "init: no such file"),
    (dict(task="interpolate", init=example_clip(), factor=0), "factor"),
    (dict(task="edit", init=example_clip(), start=5, end=12), "start/end"),
    (dict(task="edit", init=example_clip(), start=6, end=6), "start/end"),
    (dict(task="predict", init=np.zeros((70, 32, 32, 3), np.float32)), "budget"),
    (dict(task="predict", init=np.zeros((8, 32, 32, 3), np.float32), frames=60), "budget"),
    (dict(task="predict", init=np.zeros((4, 16, 16, 3), np.float32)), "32x32"),
    (dict(task="predict", init=np.zeros((0, 32, 32, 3), np.float32)), "empty"),
    (dict(task="style", init=np.full((4, 32, 32, 3), 2.0, np.float32)), "[0, 1]"),
    (dict(task="interpolate", init=example_clip()[:1]), "at least 2"),
    (dict(frames=0), "frames"),
    (dict(n=40, frames=64), "budget"),
    (dict(task="predict"), "init"),
])
def test_bad_input_is_a_clear_error(fields, needle):
    with pytest.raises(polydiff.PolydiffError) as info:
        polydiff.generate("video", "a red circle", steps=2, **fields)
    assert needle in str(info.value) and "\n" not in str(info.value)


def _broken_gif(folder):
    (folder / "bad.gif").write_bytes(b"GIF89a not really")
    return folder / "bad.gif"


def _no_frames(folder):
    (folder / "clip").mkdir()
    return folder / "clip"


def _mixed_sizes(folder):
    clip = _no_frames(folder)
    for name, size in (("0.png", (32, 32)), ("1.png", (16, 32))):
        Image.new("RGB", size).save(clip / name)
    return clip


@pytest.mark.parametrize("make, message", [(_broken_gif, "init: cannot read"),
                                           (_no_frames, "init: .*no frame images"),
                                           (_mixed_sizes, "init: frames of mixed sizes")])
def test_unusable_clip_files(tmp_path, make, message):
    with pytest.raises(polydiff.InvalidInputError, match=message):
        polydiff.generate("video", task="predict", init=str(make(tmp_path)), steps=2)


def test_two_training_steps_give_a_loadable_checkpoint(tmp_path):
    from polydiff_video import backend

    written = backend.train(out=tmp_path, progress=False, steps=2, batch_size=2, checkpoint_every=None)
    assert written.name == "model.safetensors" and (tmp_path / "model.json").is_file()
    loaded = backend.load("cpu", folder=tmp_path)
    assert loaded.config["step"] == 2 and loaded.prediction == "v"
    n, frames = 2, 12  # longer than the window: denoised window by window
    cond = {"tokens": torch.zeros(n, backend.TOKENS, 384), "mask": torch.ones(n, backend.TOKENS),
            "context": torch.zeros(n, frames, 3, 32, 32), "known": torch.zeros(n, frames)}
    y = loaded.net(torch.randn(n, frames, 3, 32, 32), torch.full((n,), 0.3), cond)
    assert y.shape == (n, frames, 3, 32, 32) and torch.isfinite(y).all()


def test_masks_cover_every_task():
    rng = np.random.default_rng(0)
    from polydiff_video.backend import PATTERNS, known_pattern

    seen = {kind: known_pattern(kind, 8, rng) for kind in PATTERNS}
    assert seen["none"].sum() == 0 and seen["past"][0] == 1 and seen["future"][-1] == 1
    assert 0 < seen["ends"].sum() < 8


def test_evaluator_quick_run_reports_every_baseline(tmp_path):
    from polydiff_video import evaluate

    report = evaluate.run(out=tmp_path, quick=True, steps=2)
    md = report["markdown"]
    assert "constant-velocity" in md and "cross-fade" in md and "img2img-per-frame" in md
    assert report["edit"]["kept_bit_exact"] == 1.0
    assert all(0 <= v <= 1 for v in report["generation"]["accuracy"].values())
