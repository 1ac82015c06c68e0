"""Every shipped modality's every task refuses an option it does not take (another task's, or
another modality's) and a NaN or infinite number, with one line naming the user's field.
Both checks live in core's request model, so no plugin can forget them."""
import math

import polydiff
import pytest
from polydiff.registries import components

SHIPPED = ("points2d", "image", "audio", "video", "text")


def _foreign(modality):
    """(task, option) pairs where the option belongs to another task or another modality."""
    mods = components().modalities
    everything = {o for m in SHIPPED for t in mods[m].tasks for o in t.option_names()}
    for task in mods[modality].tasks:
        for option in sorted(everything - set(task.option_names()))[:3]:
            yield task.name, {need: "in.file" for need in task.needs}, option


CASES = [(m, t, needs, o) for m in SHIPPED for t, needs, o in _foreign(m)]


@pytest.mark.parametrize("modality, task, needs, option", CASES)
def test_an_option_the_task_does_not_take_is_refused(modality, task, needs, option):
    with pytest.raises(polydiff.InvalidInputError) as err:
        polydiff.GenerateRequest.build(modality=modality, task=task, **needs, **{option: 1})
    assert str(err.value).startswith(f"{option}: not an option of {modality}'s {task} task")


def test_every_shipped_modality_has_cases():
    assert {case[0] for case in CASES} == set(SHIPPED)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "nan", "-inf"])
@pytest.mark.parametrize("field, fields", [("guidance", {"modality": "image"}),
                                           ("seconds", {"modality": "audio"}),
                                           ("frames", {"modality": "video"}),
                                           ("x", {"modality": "points2d", "task": "inpaint"})])
def test_nan_and_infinity_are_not_a_number(field, fields, value):
    with pytest.raises(polydiff.InvalidInputError) as err:
        polydiff.GenerateRequest.build(**fields, **{field: value})
    assert str(err.value).startswith(f"{field}: not a number")


# ----------------------------------------------------------------------------- sampler options

@pytest.mark.parametrize("fields, needle", [
    ({"sampler": "ddim", "sampler_options": {"blok": 1}}, "blok: not an option of the sampler 'ddim'; it takes eta"),
    ({"sampler": "dpmpp_2m", "sampler_options": {"eta": 1}}, "eta: not an option of the sampler 'dpmpp_2m'; it takes none"),
    ({"sampler_options": {"eta": 1}}, "sampler_options: name the sampler they are for"),
    ({"sampler": "ddim", "sampler_options": {"eta": "half"}}, "sampler_options: eta must be a number or true/false"),
    ({"sampler": "ddim", "sampler_options": {"eta": math.nan}}, "sampler_options: eta must be a finite number"),
])
def test_bad_sampler_options_are_one_line(fields, needle):
    with pytest.raises(polydiff.InvalidInputError) as err:
        polydiff.GenerateRequest.build(modality="points2d", **fields)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_sampler_option_reaches_the_sampler_and_is_recorded():
    run = dict(n=64, steps=8, seed=3, sampler="ddim")
    plain = polydiff.generate("points2d", "north", **run)
    explicit = polydiff.generate("points2d", "north", **run, sampler_options={"eta": 0.0})
    noisy = polydiff.generate("points2d", "north", **run, sampler_options={"eta": 1.0})
    assert plain.outputs[0].tolist() == explicit.outputs[0].tolist()  # eta 0 is ddim's default
    assert abs(noisy.outputs[0] - plain.outputs[0]).max() > 1e-3  # eta 1 adds fresh noise per step
    assert noisy.metadata["request"]["sampler_options"] == {"eta": 1.0}
    again = polydiff.generate("points2d", "north", **run, sampler_options={"eta": 1.0})
    assert again.outputs[0].tolist() == noisy.outputs[0].tolist()  # seeded


def test_a_request_option_overrides_the_task_s():
    text = pytest.importorskip("polydiff_text")  # noqa: F841 - the text modality's blocks sampler
    run = dict(n=1, steps=12, seed=3, sampler="blocks")
    eight = polydiff.generate("text", "a positive review of a film", **run, sampler_options={"block": 8})
    four = polydiff.generate("text", "a positive review of a film", **run, sampler_options={"block": 4})
    default = polydiff.generate("text", "a positive review of a film", **run)
    assert default.outputs[0]["text"] == eight.outputs[0]["text"] != four.outputs[0]["text"]
