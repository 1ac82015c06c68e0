"""The CLI mirrors the API: files on success; one line, exit 1 and no files on a mistake."""
import subprocess
import sys

import pytest


def polydiff(*args, cwd):
    code = "import sys; from polydiff.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True)


def test_generate_writes_files_and_metadata(tmp_path):
    run = polydiff("generate", "points2d", "east", "-n", "3", "--seed", "0", "--steps", "4",
                   "-o", "out", "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metadata.json", "points.csv", "points.svg"]


def test_modality_options_pass_through(tmp_path):
    run = polydiff("generate", "points2d", "--task", "inpaint", "--x", "1.5", "-n", "2", "--steps", "4",
                   "-o", "out", "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = (tmp_path / "out" / "points.csv").read_text().splitlines()[1:]
    assert all(r.startswith("1.500000,") for r in rows)


@pytest.mark.parametrize("args, needle", [
    (["generate", "nosuch"], "unknown modality 'nosuch'"),
    (["generate", "points2d", "--sampler", "eulr"], "did you mean 'euler'"),
    (["generate", "points2d", "--steps", "0"], "steps"),
    (["generate", "points2d", "-n", "100000"], "n:"),
    (["generate", "points2d", "--strength", "2"], "strength"),
    (["generate", "points2d", "--colour", "red"], "colour: not an option of points2d's generate task"),
    (["generate", "points2d", "mars"], "prompt"),
])
def test_mistakes_exit_nonzero_with_one_line_and_no_files(tmp_path, args, needle):
    run = polydiff(*args, "-o", "out", cwd=tmp_path)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert needle in run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("modality, prompt, extra", [("image", "a red circle", []),
                                                     ("audio", "a sine playing A4", ["--seconds", "0.5"])])
def test_shipped_step_grids_are_used_at_their_step_counts_only(tmp_path, modality, prompt, extra):
    """The README's promise: the tuned grids shipped at 5 and 8 steps are what those runs use
    (recorded with their times); 10 steps, where tuning lost, uses the default spacing."""
    import json

    for steps, spacing in (("5", "tuned"), ("10", "logsnr-window")):
        out = tmp_path / f"{modality}-{steps}"
        run = polydiff("generate", modality, prompt, *extra, "--steps", steps, "--seed", "0", "-o", str(out),
                       "--quiet", cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        resolved = json.loads((out / "metadata.json").read_text())["resolved"]
        assert resolved["spacing"] == spacing
        assert ("times" in resolved) == (spacing == "tuned")
