"""``polydiff generate MODALITY --prompts FILE``: one folder per line and a manifest, seeds from
``--seed`` and the line index, resume after a kill, bad lines refused up front, and a 2-process
torchrun run byte-identical to one process (docs/batch.md)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polydiff.generation
import pytest
from click.testing import CliRunner
from polydiff.cli import cli
from polydiff.cli.batch import SEED_STRIDE

pytestmark = pytest.mark.usefixtures("polydiff_single_thread")

PROMPTS = "# clusters to sample\nnorth\n\nsouth\n  # indented comment\neast\nwest\n"
TIMING = ("sampling_seconds",)  # the only metadata.json field allowed to differ between runs


def batch(tmp_path, text, *args, name="prompts.txt", out="out"):
    (tmp_path / name).write_text(text)
    return CliRunner().invoke(cli, ["generate", "points2d", "--prompts", str(tmp_path / name), "--steps", "2",
                                    "-o", str(tmp_path / out), "--quiet", *args])


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def snapshot(out: Path) -> dict:
    """Every file under ``out`` -> its bytes, with metadata.json's timing left out."""
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "metadata.json":
            meta = json.loads(data)
            for key in TIMING:
                meta.pop(key)
            data = json.dumps(meta, sort_keys=True).encode()
        files[path.relative_to(out).as_posix()] = data
    return files


def test_plain_text_gives_a_folder_per_line_and_a_manifest(tmp_path):
    run = batch(tmp_path, PROMPTS, "--seed", "7")
    assert run.exit_code == 0, run.output
    out = tmp_path / "out"
    assert run.output.strip().endswith("manifest.jsonl")
    assert sorted(p.name for p in out.iterdir()) == ["00000", "00001", "00002", "00003", "manifest.jsonl"]
    records = manifest(out)
    assert [(r["index"], r["line"], r["request"]["prompt"], r["status"]) for r in records] == [
        (0, 2, "north", "done"), (1, 4, "south", "done"), (2, 6, "east", "done"), (3, 7, "west", "done")]
    for r in records:
        assert r["request"]["seed"] == 7 + SEED_STRIDE * r["index"]
        assert r["files"] == [f"{r['index']:05d}/{f}" for f in ("metadata.json", "points.csv", "points.svg")]
        meta = json.loads((out / r["files"][0]).read_text())
        assert meta["request"] == r["request"]
    # a line's output is exactly what a single `generate` with its seed gives, whatever ran it
    alone = polydiff.generation.generate("points2d", "east", seed=7 + 2 * SEED_STRIDE, steps=2).save(tmp_path / "alone")
    assert (out / "00002" / "points.csv").read_bytes() == next(p for p in alone if p.suffix == ".csv").read_bytes()
    assert (out / "00002" / "points.csv").read_bytes() != (out / "00001" / "points.csv").read_bytes()


def test_jsonl_fields_override_the_command_line(tmp_path):
    lines = [{"prompt": "north", "n": 3},
             {"task": "inpaint", "options": {"x": 1.5}, "n": 2, "seed": 123},
             {"prompt": "west", "steps": 3, "seed": None}]
    run = batch(tmp_path, "\n".join(json.dumps(x) for x in lines) + "\n", "-n", "4", name="requests.jsonl")
    assert run.exit_code == 0, run.output
    out = tmp_path / "out"
    rows = [(out / f"{i:05d}" / "points.csv").read_text().splitlines()[1:] for i in range(3)]
    assert [len(r) for r in rows] == [3, 2, 4]
    assert all(row.startswith("1.500000,") for row in rows[1])
    requests = [r["request"] for r in manifest(out)]
    assert [q["seed"] for q in requests] == [0, 123, 2 * SEED_STRIDE]
    assert [q["steps"] for q in requests] == [2, 2, 3]
    assert requests[1]["task"] == "inpaint" and requests[1]["options"]["x"] == 1.5


def test_a_rerun_reproduces_every_byte(tmp_path):
    assert batch(tmp_path, PROMPTS, "--seed", "3", out="a").exit_code == 0
    assert batch(tmp_path, PROMPTS, "--seed", "3", out="b").exit_code == 0
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    assert batch(tmp_path, PROMPTS, "--seed", "4", out="c").exit_code == 0
    assert snapshot(tmp_path / "c")["00000/points.csv"] != snapshot(tmp_path / "a")["00000/points.csv"]


def test_resume_after_a_kill_makes_only_the_missing_lines(tmp_path, monkeypatch):
    real, calls = polydiff.generation.generate, []

    def killed_at_line_2(modality, prompt=None, **fields):
        calls.append(prompt)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill would: nothing after it runs, no manifest
        return real(modality, prompt, **fields)

    monkeypatch.setattr(polydiff.generation, "generate", killed_at_line_2)
    run = batch(tmp_path, PROMPTS)
    out = tmp_path / "out"
    assert run.exit_code != 0 and not (out / "manifest.jsonl").exists()
    assert sorted(p.name for p in out.iterdir()) == ["00000", "00001"]
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "00001").iterdir()}
    (out / "00000" / ".done").unlink()                      # a folder without its marker is not done
    (out / ".partial-00003").mkdir()                        # a half-written folder from the kill
    (out / ".partial-00003" / "points.csv").write_text("half")

    calls.clear()
    monkeypatch.setattr(polydiff.generation, "generate", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    run = batch(tmp_path, PROMPTS)
    assert run.exit_code == 0, run.output
    assert calls == ["north", "east", "west"]
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "00001").iterdir()} == before
    assert sorted(p.name for p in out.iterdir()) == ["00000", "00001", "00002", "00003", "manifest.jsonl"]
    assert [r["status"] for r in manifest(out)] == ["done"] * 4

    fresh = batch(tmp_path, PROMPTS, out="fresh")
    assert fresh.exit_code == 0 and snapshot(tmp_path / "fresh") == snapshot(out)
    calls.clear()
    assert batch(tmp_path, PROMPTS).exit_code == 0 and calls == []  # all done: nothing to generate
    calls.clear()
    assert batch(tmp_path, PROMPTS.replace("east", "north")).exit_code == 0  # a changed line is redone
    assert calls == ["north"] and manifest(out)[2]["request"]["prompt"] == "north"


@pytest.mark.parametrize("text, name, needle", [
    ('{"prompt": "north"}\n{"prompt": "south",}\n', "p.jsonl", "p.jsonl line 2: invalid JSON"),
    ('{"prompt": "north"}\n\n# x\n{"promt": "south"}\n', "p.jsonl", "p.jsonl line 4: promt: unknown field; did you mean 'prompt'?"),
    ('{"prompt": "north"}\n{"steps": 0}\n', "p.jsonl", "p.jsonl line 2: steps: Input should be greater than or equal to 1"),
    ('{"prompt": "north"}\n[1, 2]\n', "p.jsonl", "p.jsonl line 2: expected a JSON object"),
    ('{"options": {"colour": "red"}}\n', "p.jsonl", "p.jsonl line 1: colour: not an option of points2d's generate task"),
    ("north\nsouth\nmars\nvenus\n", "p.txt", "p.txt line 3: prompt: name one cluster of"),
    ("# only a comment\n\n", "p.txt", "holds no prompts"),
])
def test_a_bad_line_is_one_line_naming_it_and_nothing_is_written(tmp_path, text, name, needle):
    run = batch(tmp_path, text, name=name)
    assert run.exit_code == 1
    assert run.output.count("\n") == 1 and needle in run.output, run.output
    assert "Traceback" not in run.output
    assert not (tmp_path / "out").exists()


def test_two_torchrun_processes_write_the_same_bytes_as_one(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip(f"torchrun not found next to {sys.executable}")
    lines = [{"prompt": p} for p in ("north", "south", "east", "west", "north")] + [{"prompt": "east", "n": 3}]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (tmp_path / "p.jsonl").write_text(text)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    run = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "polydiff", "generate",
                          "points2d", "--prompts", "p.jsonl", "--steps", "2", "--seed", "11", "-o", "two", "--quiet"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == str(Path("two") / "manifest.jsonl")  # printed once, by rank 0
    assert batch(tmp_path, text, "--seed", "11", name="p.jsonl", out="one").exit_code == 0
    two, one = snapshot(tmp_path / "two"), snapshot(tmp_path / "one")
    assert len(one) == 6 * 4 + 1 and sorted(two) == sorted(one)
    assert two == one
    shutil.rmtree(tmp_path / "two" / "00003")  # and a resumed 1-process run completes a torchrun one
    assert batch(tmp_path, text, "--seed", "11", name="p.jsonl", out="two").exit_code == 0
    assert snapshot(tmp_path / "two") == one


def test_a_marker_that_is_not_a_record_means_the_line_is_made_again(tmp_path):
    assert batch(tmp_path, "north\n").exit_code == 0
    out = tmp_path / "out"
    (out / "00000" / ".done").write_text("[1, 2]")           # valid JSON, but not a done record
    run = batch(tmp_path, "north\n")
    assert run.exit_code == 0, run.output
    assert json.loads((out / "00000" / ".done").read_text())["request"]["prompt"] == "north"


def test_a_batch_refuses_a_folder_of_something_else_and_a_file(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    run = batch(tmp_path, PROMPTS, out="mine")
    assert run.exit_code == 1 and "holds no polydiff batch" in run.output
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    run = batch(tmp_path, PROMPTS, out="file")
    assert run.exit_code == 1 and "is a file, not a folder" in run.output


def test_a_batch_without_out_gets_a_new_folder_and_resumes_in_a_named_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.txt").write_text(PROMPTS)
    for _ in range(2):
        run = CliRunner().invoke(cli, ["generate", "points2d", "--prompts", "p.txt", "--steps", "2", "--quiet"])
        assert run.exit_code == 0, run.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["points2d-batch-0001", "points2d-batch-0002"]
    again = batch(tmp_path, PROMPTS, out="out/points2d-batch-0001")  # a batch folder is reused to resume
    assert again.exit_code == 0, again.output
