"""Clip files read at their true bit depth, or refused with one line naming the field."""
import numpy as np
import polydiff
import pytest
from PIL import Image
from polydiff_video.data import SIZE
from polydiff_video.io import MAX_PIXELS, read_clip


def test_a_16_bit_contact_sheet_is_scaled_by_65535(tmp_path):
    sheet = np.zeros((SIZE, 2 * SIZE), np.uint16)
    sheet[:, :SIZE], sheet[:, SIZE:] = 65535, 32768
    Image.fromarray(sheet).save(tmp_path / "sheet.png")
    clip = read_clip(tmp_path / "sheet.png", "init")
    assert clip.shape == (2, 3, SIZE, SIZE)
    assert float(clip[0].min()) == 1.0
    assert abs(float(clip[1].mean()) - 0.5) < 1 / 255   # mid-grey (8-bit frames), not white


def test_a_bomb_is_refused_before_decoding(tmp_path):
    Image.new("1", (5000, 5000)).save(tmp_path / "bomb.png")
    with pytest.raises(polydiff.InvalidInputError) as err:
        read_clip(tmp_path / "bomb.png", "init")
    assert str(err.value).startswith("init: ") and f"{MAX_PIXELS:,} pixels" in str(err.value)


def test_a_truncated_sheet_is_one_line(tmp_path):
    rgb = (np.random.default_rng(0).random((SIZE, 2 * SIZE, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "s.png")
    data = (tmp_path / "s.png").read_bytes()
    (tmp_path / "s.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(polydiff.InvalidInputError, match=r"^init: .*truncated"):
        read_clip(tmp_path / "s.png", "init")


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8, 0.99])
def test_a_cut_gif_is_one_line(tmp_path, fraction):
    rgb = (np.random.default_rng(0).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    frames = [Image.fromarray(np.roll(rgb, i, 1)) for i in range(4)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    data = (tmp_path / "a.gif").read_bytes()
    (tmp_path / "a.gif").write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(polydiff.InvalidInputError, match=r"^init: .*truncated"):
        read_clip(tmp_path / "a.gif", "init")
