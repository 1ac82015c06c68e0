"""Output folders never mix runs: claimed and checked before sampling, locked against a second
writer, filled all at once, and a result can be made again from its metadata.json."""
import json
import subprocess
import sys
import textwrap

import polydiff
import pytest
from click.testing import CliRunner
from polydiff.cli import cli
from polydiff.errors import InvalidInputError, PolydiffError
from polydiff.output import OutputFolder, next_run_folder


@pytest.fixture(scope="module")
def result():
    return polydiff.generate("points2d", "north", n=3, steps=3, seed=4)


def test_a_new_folder_gets_every_file_and_nothing_is_left_beside_it(tmp_path, result):
    paths = result.save(tmp_path / "run")
    assert sorted(p.name for p in paths) == ["metadata.json", "points.csv", "points.svg"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no lock, no staging folder
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["files"] == ["points.csv", "points.svg"]


def test_a_folder_of_something_else_is_refused_and_left_untouched(tmp_path, result):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="holds no polydiff result"):
        result.save(tmp_path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_earlier_result_is_kept_unless_overwrite_and_then_replaced_whole(tmp_path, result):
    folder = tmp_path / "run"
    result.save(folder)
    (folder / "sample_9.png").write_bytes(b"from a larger earlier run")
    with pytest.raises(InvalidInputError, match="--overwrite"):
        result.save(folder)
    assert (folder / "sample_9.png").exists()
    result.save(folder, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", "points.csv", "points.svg"]


def test_a_failed_write_keeps_the_earlier_result_whole(tmp_path, result):
    folder = tmp_path / "run"
    result.save(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    class Broken:
        outputs, request, metadata = result.outputs, result.request, result.metadata

        @staticmethod
        def writer(outputs, staging, request):
            (staging / "points.csv").write_text("half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with OutputFolder(folder, overwrite=True) as out:
            out.write(Broken)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("make, needle", [
    (lambda d: "", "empty"),
    (lambda d: (d / "f").write_text("x") and d / "f", "is a file"),
    (lambda d: (d / "f").write_text("x") and d / "f" / "below", "cannot write"),
    (lambda d: "/proc/polydiff-out", "cannot write"),
])
def test_path_problems_are_one_line_before_any_sampling(tmp_path, monkeypatch, make, needle):
    def must_not_sample(*args, **kwargs):
        raise AssertionError("sampled before the output folder was checked")

    monkeypatch.setattr("polydiff.generation.generate", must_not_sample)
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(cli, ["generate", "points2d", "-o", str(make(tmp_path)), "--quiet"])
    assert run.exit_code == 1 and needle in run.output, run.output
    assert "Traceback" not in run.output and len(run.output.strip().splitlines()) == 1


def test_stale_staging_of_a_killed_writer_is_cleaned_by_the_next(tmp_path, result):
    for stale in (".run.staging-abc", ".run.old-123"):
        (tmp_path / stale).mkdir()
        (tmp_path / stale / "points.csv").write_text("left by a kill")
    result.save(tmp_path / "run")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_second_process_cannot_write_a_folder_being_written(tmp_path, result):
    holder = textwrap.dedent(f"""
        import sys, time
        from polydiff.output import OutputFolder
        with OutputFolder({str(tmp_path / 'run')!r}):
            print("claimed", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "claimed"
        with pytest.raises(PolydiffError, match="another polydiff process is writing"):
            result.save(tmp_path / "run")
    finally:
        proc.communicate("done\n", timeout=60)
    assert proc.returncode == 0
    result.save(tmp_path / "run")  # free again once the holder is done
    assert (tmp_path / "run" / "metadata.json").exists()


def test_without_out_every_run_gets_a_new_numbered_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert next_run_folder("out", "points2d") == tmp_path.joinpath("out", "points2d-0001").relative_to(tmp_path)
    for _ in range(2):
        run = CliRunner().invoke(cli, ["generate", "points2d", "--steps", "2", "--quiet"])
        assert run.exit_code == 0, run.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["points2d-0001", "points2d-0002"]


def test_regenerate_reproduces_a_result_and_says_when_files_differ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["generate", "points2d", "west", "-n", "4", "--steps", "5", "--sampler",
                               "dpmpp_2m_sde", "-o", "first", "--quiet"]).exit_code == 0
    again = runner.invoke(cli, ["regenerate", "first/metadata.json", "-o", "again", "--quiet"])
    assert again.exit_code == 0 and "identical: all 2 files match first" in again.output, again.output
    assert (tmp_path / "first" / "points.csv").read_bytes() == (tmp_path / "again" / "points.csv").read_bytes()
    (tmp_path / "first" / "points.csv").write_text("x,y\n0,0\n")
    differ = runner.invoke(cli, ["regenerate", "first", "-o", "third", "--quiet"])
    assert differ.exit_code == 1 and "1 of 2 files differ from first (points.csv)" in differ.output


@pytest.mark.parametrize("edit, needle", [
    (lambda m, d: m["inputs"]["init"].update(sha256="0" * 64), "changed since the result was made"),
    (lambda m, d: m["inputs"]["init"].update(path=str(d / "gone.npy")), "is gone"),
    (lambda m, d: m["request"].update(init="<array shape=(2, 2)>"), "made from an array"),
    (lambda m, d: m["request"].update(seed=None), "records no seed"),
    (lambda m, d: m.pop("request"), "not a polydiff metadata.json"),
])
def test_regenerate_refuses_what_it_cannot_reproduce(tmp_path, edit, needle):
    from polydiff.reproduce import recorded

    source = tmp_path / "init.npy"
    source.write_bytes(b"an input file")
    from polydiff.checkpoint import sha256_file

    meta = {"request": {"modality": "points2d", "seed": 1, "init": str(source)}, "files": [],
            "inputs": {"init": {"path": str(source), "sha256": sha256_file(source)}}}
    assert recorded_ok(tmp_path, meta)
    edit(meta, tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match=needle):
        recorded(tmp_path / "metadata.json")


def recorded_ok(folder, meta) -> bool:
    from polydiff.reproduce import recorded

    (folder / "metadata.json").write_text(json.dumps(meta))
    return recorded(folder)["request"]["seed"] == 1


def test_input_files_are_recorded_with_their_hashes(tmp_path):
    from types import SimpleNamespace

    from polydiff.checkpoint import sha256_file
    from polydiff.reproduce import describe_inputs

    (tmp_path / "in.png").write_bytes(b"png bytes")
    request = SimpleNamespace(init=str(tmp_path / "in.png"), mask=None, options={"clip": str(tmp_path / "in.png"),
                                                                               "word": "left"})
    assert describe_inputs(request) == {
        "init": {"path": str(tmp_path / "in.png"), "sha256": sha256_file(tmp_path / "in.png")},
        "options.clip": {"path": str(tmp_path / "in.png"), "sha256": sha256_file(tmp_path / "in.png")}}
