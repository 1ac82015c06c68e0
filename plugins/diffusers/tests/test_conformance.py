"""The conformance kit on the diffusers backend, with each tiny folder as the user's model."""
import polydiff.testing as kit
import pytest


@pytest.mark.parametrize("folder", ["pixel_folder", "sd_folder"])
def test_backend_passes_the_kit_on_a_folder(folder, request):
    kit.check_backend("diffusers", model=str(request.getfixturevalue(folder)))


def test_without_a_folder_the_kit_skips_it_and_says_why():
    with pytest.raises(kit.CheckSkipped, match="runs users' models"):
        kit.check_backend("diffusers")
