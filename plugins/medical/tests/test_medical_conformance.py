"""The medical plugin passes polydiff's conformance kit, like every plugin."""
from polydiff.testing import check_plugin


def test_medical_plugin_passes_the_conformance_kit():
    check_plugin("medical")
