"""The example plugin passes polydiff's conformance kit, like every built-in plugin."""
from polydiff.testing import check_plugin


def test_example_plugin_passes_the_conformance_kit():
    check_plugin("example")
