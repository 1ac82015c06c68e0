"""notes-turbo, the 4-step student of notes-unet: four unguided ddim steps, a seed fixes a clip
in any batch, it plays the prompted note, and what it was not trained for is refused in one line."""
import polydiff
import pytest
import torch
from polydiff_audio import checker

pytestmark = pytest.mark.usefixtures("polydiff_single_thread")
TURBO = "notes-turbo"


def test_four_unguided_ddim_steps_and_a_seed_fixes_a_clip():
    both = polydiff.generate("audio", "a sine playing A4", backend=TURBO, n=2, seed=10)
    resolved = both.metadata["resolved"]
    assert (resolved["sampler"], resolved["steps"], resolved["spacing"], resolved["guidance"]) == ("ddim", 4, "trained", 1.0)
    alone = polydiff.generate("audio", "a sine playing A4", backend=TURBO, n=1, seed=11)
    assert torch.allclose(both.samples[1], alone.samples[0], atol=1e-4)


def test_it_plays_the_prompted_note():
    result = polydiff.generate("audio", "an organ playing A4", backend=TURBO, n=3, seed=0)
    assert sum(checker.note_ok(w, "A4") for w in result.outputs) >= 2


@pytest.mark.parametrize("fields, needle", [
    ({"steps": 20}, "steps: backend 'notes-turbo' is a 4-step"),
    ({"guidance": 3.0}, "guidance: backend 'notes-turbo' has guidance 1.5 distilled in"),
])
def test_what_it_was_not_trained_for_is_refused(fields, needle):
    with pytest.raises(polydiff.InvalidInputError, match=needle):
        polydiff.generate("audio", "a sine playing A4", backend=TURBO, n=1, seed=0, **fields)
