"""Image inputs read at their true scale, or refused with one line naming the field."""
import numpy as np
import polydiff
import pytest
from PIL import Image
from polydiff_image.io import MAX_PIXELS, read_image


def test_16_bit_grey_png_is_scaled_by_65535(tmp_path):
    grey = np.zeros((8, 8), np.uint16)
    grey[:, :4], grey[:, 4:] = 65535, 32768
    Image.fromarray(grey).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png", "init")
    assert image.shape == (3, 8, 8)
    assert float(image[:, :, :4].min()) == 1.0                       # white
    assert abs(float(image[:, :, 4:].mean()) - 32768 / 65535) < 1e-6  # mid-grey, not white


def test_palette_png_reads_as_its_colours(tmp_path):
    rgb = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16).save(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"), np.float32) / 255
    image = read_image(tmp_path / "p.png", "init")
    assert np.abs(image.permute(1, 2, 0).numpy() - expected).max() < 1e-6
    assert len(np.unique(expected.reshape(-1, 3), axis=0)) > 1


def _truncated(path):
    rgb = (np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _bomb(path, side=5000):   # a tiny file that decodes to side x side pixels
    Image.new("1", (side, side)).save(path)
    return path


@pytest.mark.parametrize("make, words", [(_truncated, "truncated"), (_bomb, f"{MAX_PIXELS:,} pixels")])
def test_truncated_and_bomb_images_are_one_line_naming_the_field(tmp_path, make, words):
    path = make(tmp_path / "bad.png")
    with pytest.raises(polydiff.InvalidInputError) as err:
        read_image(path, "mask")
    message = str(err.value)
    assert message.startswith("mask: ") and words in message and "\n" not in message


def test_a_bomb_over_pils_own_limit_is_refused_the_same_way(tmp_path):
    with pytest.raises(polydiff.InvalidInputError, match=r"^init: .*decompression bomb"):
        read_image(_bomb(tmp_path / "big.png", 20000), "init")


def test_a_truncated_init_fails_before_any_output_exists(tmp_path, polydiff_single_thread):
    path = _truncated(tmp_path / "in.png")
    with pytest.raises(polydiff.InvalidInputError, match="^init: "):
        polydiff.generate("image", "a red circle", task="img2img", init=str(path), steps=1)


def _png16(pixels: np.ndarray, colour: int) -> bytes:
    """A 16-bit PNG by hand (PIL cannot write 16-bit RGB): colour 2 = RGB, 4 = grey + alpha."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = pixels.shape[:2]
    rows = b"".join(b"\x00" + pixels[r].astype(">u2").tobytes() for r in range(h))
    header = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("colour, values, expected", [(2, (65535, 32768, 0), (1.0, 0.5, 0.0)),
                                                      (4, (32768, 65535), (0.5, 0.5, 0.5))])
def test_16_bit_rgb_and_grey_alpha_pngs_keep_their_levels(tmp_path, colour, values, expected):
    pixels = np.zeros((4, 4, len(values)), np.uint16) + np.array(values, np.uint16)
    (tmp_path / "in.png").write_bytes(_png16(pixels, colour))
    image = read_image(tmp_path / "in.png", "init")
    assert np.abs(image[:, 0, 0].numpy() - np.array(expected)).max() <= 1 / 255
