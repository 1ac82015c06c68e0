"""Audio requests too short for the log-mel representation, or not numbers, are refused with
one line naming the user's field, before any output file exists."""
import math

import numpy as np
import polydiff
import pytest
import soundfile
from click.testing import CliRunner
from polydiff import cli
from polydiff_audio.tasks import MIN_SAMPLES


def _wav(path, samples):
    soundfile.write(str(path), (np.sin(np.arange(samples) / 3) * 9000).astype(np.int16), 16000,
                    subtype="PCM_16")
    return str(path)


@pytest.mark.parametrize("task", ["style", "denoise", "continue", "edit"])
@pytest.mark.parametrize("samples", [1, MIN_SAMPLES - 1])
def test_a_wav_too_short_is_refused_before_any_file(tmp_path, task, samples, polydiff_single_thread):
    out = tmp_path / "out"
    extra = ["--start", "0", "--end", "0.01"] if task == "edit" else []
    cli._add_plugin_commands()
    result = CliRunner().invoke(cli.cli, ["generate", "audio", "x", "--task", task, "--init",
                                       _wav(tmp_path / "in.wav", samples), "--steps", "1", "-o", str(out), *extra],
                                prog_name="polydiff")
    assert result.exit_code == 1
    assert result.output.startswith("Error: init: ") and f"at least {MIN_SAMPLES}" in result.output
    assert not out.exists()


def test_a_wav_of_the_minimum_length_is_accepted(tmp_path, polydiff_single_thread):
    result = polydiff.generate("audio", task="style", init=_wav(tmp_path / "in.wav", MIN_SAMPLES), steps=1)
    assert result.outputs[0].shape == (MIN_SAMPLES,)
    assert len(result.save(tmp_path / "out")) == 3   # WAV, spectrogram PNG, metadata


@pytest.mark.parametrize("seconds, words", [(1e-9, "seconds: Input should be greater than or equal to"),
                                            (math.nan, "seconds: not a number"),
                                            (math.inf, "seconds: not a number")])
def test_seconds_is_named_for_lengths_the_representation_cannot_hold(seconds, words):
    with pytest.raises(polydiff.InvalidInputError) as err:
        polydiff.generate("audio", "a sine", seconds=seconds, steps=1)
    assert str(err.value).startswith(words)
