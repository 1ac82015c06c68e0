"""Bad input to the medical tasks: one line naming the field, exit 1 from the CLI, no files."""
import subprocess
import sys

import numpy as np
import polydiff
import pytest
from polydiff_medical import data, operators


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    image = data.phantom(9)[0]
    np.save(d / "slice.npy", image)
    np.save(d / "kspace.npy", operators.fft2c(__import__("torch").from_numpy(image)).numpy())
    np.save(d / "sampling32.npy", np.ones((32, 32), np.float32))
    np.save(d / "sino.npy", np.zeros((18, 64), np.float32))
    np.save(d / "nan.npy", np.full((64, 64), np.nan, np.float32))
    np.save(d / "small.npy", np.zeros((16, 16), np.float32))
    np.save(d / "flat.npy", np.full((64, 64), 0.5, np.float32))
    (d / "junk.dcm").write_bytes(b"not a dicom at all")
    return d


CASES = [
    (["--task", "reconstruct-mri", "--init", "kspace.npy"], "sampling: a k-space --init needs --sampling"),
    (["--task", "reconstruct-mri", "--init", "kspace.npy", "--sampling", "sampling32.npy"],
     "sampling: mask 32x32 and k-space 64x64 differ in shape"),
    (["--task", "reconstruct-mri", "--init", "slice.npy", "--acceleration", "0.5"], "acceleration"),
    (["--task", "reconstruct-mri", "--init", "slice.npy", "--acceleration", "nan"], "acceleration"),
    (["--task", "reconstruct-ct", "--init", "sino.npy", "--angles", "[0, 90]"], "angles: 2 angles for a sinogram of 18 rows"),
    (["--task", "reconstruct-ct", "--init", "slice.npy", "--views", "0"], "views"),
    (["--task", "segment", "--init", "nan.npy"], "init: holds NaN"),
    (["--task", "segment", "--init", "small.npy"], "init: slices must be 64x64"),
    (["--task", "segment", "--init", "junk.dcm"], "init: "),
    (["--task", "segment", "--init", "missing.nii.gz"], "init: no such file"),
    (["--task", "enhance", "--init", "slice.npy", "--mode", "super-resolution"], "init: super-resolution takes"),
    (["--task", "enhance", "--init", "slice.npy", "--mode", "sharpen"], "mode"),
    (["--task", "enhance", "--init", "flat.npy", "--mode", "contrast"], "init: the slice is flat"),
    (["--task", "segment"], "init: the segment task needs --init"),
    (["a brain with a tumour"], "prompt: the medical model takes no prompt"),
]


@pytest.mark.parametrize("args, needle", CASES, ids=[c[1][:40] for c in CASES])
def test_bad_input_is_one_line_exit_1_and_no_files(files, args, needle):
    code = "import sys; from polydiff.cli import main; sys.exit(main())"
    run = subprocess.run([sys.executable, "-c", code, "generate", "medical", *args, "--steps", "2", "-o", "out",
                          "--quiet"], cwd=files, capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert needle in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (files / "out").exists()


def test_the_python_api_raises_the_same_errors():
    with pytest.raises(polydiff.InvalidInputError, match="acceleration"):
        polydiff.generate("medical", task="reconstruct-mri", init=data.phantom(1)[0], acceleration=0.9)
