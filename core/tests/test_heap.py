"""keep_heap: glibc thresholds set once per process, and the user's opt-outs are respected."""
import os
import platform
import subprocess
import sys

import pytest

CODE = "from polydiff.heap import keep_heap; print(keep_heap())"


def _run(**env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "POLYDIFF_KEEP_HEAP"}
    full.update(env)
    return subprocess.run([sys.executable, "-c", CODE], env=full, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_sets_thresholds_on_glibc():
    assert _run() == "True"


@pytest.mark.parametrize("env", [{"POLYDIFF_KEEP_HEAP": "0"}, {"MALLOC_TRIM_THRESHOLD_": "1000"},
                                 {"MALLOC_MMAP_THRESHOLD_": "1000"}])
def test_opt_outs_leave_malloc_alone(env):
    assert _run(**env) == "False"
