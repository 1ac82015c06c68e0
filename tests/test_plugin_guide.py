"""docs/plugins.md, followed literally: every code block in it runs, in order, as written.

- ``bash`` blocks run in a throw-away virtual environment (see _venv.py), in one folder;
- ``python``/``toml`` blocks tagged ``file=PATH`` (``append=PATH``) write (extend) that file;
- other ``python`` blocks run as scripts in that environment, except those of the hook
  reference, which are self-contained and run here, as ``python example.py`` would;
- a catalogue entry (a ``toml`` block starting with ``[plugins.``) must pass the catalogue's
  validation.
"""
from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
from _markdown import read_blocks
from _venv import make_venv

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
REFERENCE = "Hook reference"


BLOCKS = read_blocks(GUIDE.read_text())
REFERENCE_EXAMPLES = [b for b in BLOCKS if b["section"] == REFERENCE]
WALKTHROUGH = [b for b in BLOCKS if b["section"] != REFERENCE]


def test_every_block_is_of_a_kind_this_test_runs():
    assert len(BLOCKS) >= 20
    for b in BLOCKS:
        where = f"docs/plugins.md:{b['line']}"
        assert b["lang"] in ("bash", "python", "toml"), f"{where}: a ```{b['lang']} block is not run by any test"
        assert set(b["attrs"]) <= {"file", "append"}, where
        if b["lang"] == "toml":
            assert "file" in b["attrs"], f"{where}: a toml block must say which file it is (file=...)"
        if b["section"] == REFERENCE:
            assert b["lang"] == "python" and not b["attrs"], f"{where}: reference examples are scripts"
            assert 'if __name__ == "__main__":' in b["code"], f"{where}: the example must run as a script"
        target = b["attrs"].get("file") or b["attrs"].get("append")
        if target:  # a reader must be told where the code goes
            assert target in b["prose"] or Path(target).name in b["prose"], f"{where}: prose never names {target}"


@pytest.mark.parametrize("block", REFERENCE_EXAMPLES, ids=[f"line{b['line']}" for b in REFERENCE_EXAMPLES])
def test_hook_reference_example_runs_as_a_script(block, tmp_path, capsys, polydiff_single_thread):
    script = tmp_path / "example.py"
    script.write_text(block["code"])
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip(), "the example prints what the kit checked"


@pytest.mark.slow
def test_the_tutorial_works_as_written(tmp_path):
    """The walkthrough, from an empty folder to a generated file, a passing kit, a wheel and an
    uninstall, in a fresh environment that has polydiff installed."""
    from polydiff.cli.catalogue import read_catalogue

    env = make_venv(tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    outputs = []
    for b in WALKTHROUGH:
        where = f"docs/plugins.md:{b['line']}"
        if "file" in b["attrs"] or "append" in b["attrs"]:
            path = work / (b["attrs"].get("file") or b["attrs"]["append"])
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a" if "append" in b["attrs"] else "w") as f:
                f.write(b["code"])
            if b["lang"] == "toml" and b["code"].startswith("[plugins."):
                assert read_catalogue(path).plugins, where
        elif b["lang"] == "bash":
            outputs.append((where, env.run(b["code"], cwd=work)))
        else:
            script = tmp_path / f"block{b['line']}.py"
            script.write_text(b["code"])
            outputs.append((where, env.run(str(env.python), str(script), cwd=work)))
    rows = (work / "out" / "sparkline" / "sparklines.csv").read_text().splitlines()
    assert len(rows) == 3 and all(len(r.split(",")) == 12 for r in rows)
    assert all(float(r.split(",")[-1]) > float(r.split(",")[0]) for r in rows), rows  # "going up"
    assert (work / "out" / "sparkline-down" / "metadata.json").is_file()
    assert (work / "weather" / "pyproject.toml").is_file()
    assert list((work / "dist").glob("polydiff_sparkline-0.1.0-*.whl"))
    text = {where: proc.stdout + proc.stderr for where, proc in outputs}
    assert not [w for w, t in text.items() if "skipped plugin" in t or "Traceback" in t], text
    assert any("torch.Size([5, 12])" in t for t in text.values())
    assert any(re.search(r"\d+ passed", t) and "failed" not in t for t in text.values())
    assert any("polydiff conformance of plugin 'sparkline'" in t and ", 0 failed" in t for t in text.values())
    listed = env.run("polydiff plugins --json", cwd=work).stdout
    assert '"sparkline"' not in listed  # the last step uninstalled it
