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
