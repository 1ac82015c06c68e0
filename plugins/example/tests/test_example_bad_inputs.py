"""points2d's --x: not a number, or far outside the data, is named as x (not blamed on the model)."""
import math

import polydiff
import pytest


@pytest.mark.parametrize("x, words", [(math.nan, "x: not a number"), (-math.inf, "x: not a number"),
                                      (1e30, "x: Input should be less than or equal to 100")])
def test_x_is_named(x, words):
    with pytest.raises(polydiff.InvalidInputError) as err:
        polydiff.generate("points2d", "north", task="inpaint", x=x, steps=1)
    assert str(err.value).startswith(words)
