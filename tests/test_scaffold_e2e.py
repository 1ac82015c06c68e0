"""A plugin made with `polydiff plugins new`, outside this repository, installs, generates and
passes the conformance kit and its own tests, straight out of the scaffold."""
from __future__ import annotations

import json
import re

import pytest
from _venv import make_venv


@pytest.mark.slow
def test_scaffolded_plugin_installs_generates_and_passes_the_kit(tmp_path):
    env = make_venv(tmp_path / "venv")
    work = tmp_path / "elsewhere"  # not inside the polydiff repository
    work.mkdir()

    made = env.run("polydiff", "plugins", "new", "myplug", cwd=work)
    assert made.stdout.strip() == "myplug" and (work / "myplug" / "pyproject.toml").is_file()
    assert "polydiff plugins install ./myplug" in made.stderr

    env.run("polydiff", "plugins", "install", "./myplug", "--", "-q", cwd=work)
    report = json.loads(env.run("polydiff", "plugins", "--json", cwd=work).stdout)
    plugin = next(p for p in report["plugins"] if p["name"] == "myplug")
    assert plugin["distribution"] == "polydiff-myplug" and plugin["version"] == "0.1.0"
    assert plugin["hooks"] == ["register_backends", "register_encoders", "register_modalities"]
    assert report["failed"] == []

    gen = env.run("polydiff", "generate", "myplug", "a wave", "-n", "4", "--seed", "0",
                  "-o", "out/myplug", "--quiet", cwd=work)
    assert sorted(p.rsplit("/", 1)[-1] for p in gen.stdout.split()) == ["metadata.json", "myplug.csv", "myplug.svg"]
    rows = (work / "out/myplug/myplug.csv").read_text().splitlines()
    assert len(rows) == 5 and all(len(r.split(",")) == 32 for r in rows)
    env.run("polydiff", "generate", "myplug", "--task", "continue", "--init", "out/myplug/myplug.csv",
            "-n", "4", "--seed", "1", "-o", "out/continued", "--quiet", cwd=work)
    cont = (work / "out/continued/myplug.csv").read_text().splitlines()
    assert [r.split(",")[:16] for r in cont[1:]] == [r.split(",")[:16] for r in rows[1:]]  # kept start

    bad = env.run("polydiff", "generate", "myplug", "--task", "continue", "-o", "out/bad", cwd=work, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("Error: init:") and "Traceback" not in bad.stderr

    tests = env.run("python", "-m", "pytest", "myplug/tests", "-q", "-p", "no:cacheprovider", cwd=work)
    assert re.search(r"\b7 passed\b", tests.stdout) and "failed" not in tests.stdout, tests.stdout

    kit = env.run("polydiff", "plugins", "check", "myplug", cwd=work)
    assert "polydiff conformance of plugin 'myplug' 0.1.0" in kit.stdout and ", 0 failed" in kit.stdout
    assert re.search(r"ok\s+task\s+myplug:continue@cpu", kit.stdout), kit.stdout
