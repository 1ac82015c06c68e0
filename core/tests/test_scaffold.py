"""`polydiff plugins new`: names, the files it writes, and never overwriting.
(tests/test_scaffold_e2e.py installs a scaffolded plugin and runs it.)"""
from __future__ import annotations

import ast
import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import pytest
from click.testing import CliRunner
from polydiff import cli as cli_module
from polydiff.cli.scaffold import names_for, new_plugin
from polydiff.errors import InvalidInputError

TEMPLATE = Path(__import__("polydiff.cli.scaffold", fromlist=["x"]).__file__).with_name("template")
EXPECTED = [".gitignore", "README.md", "pyproject.toml", "src/polydiff_myplug/__init__.py",
            "src/polydiff_myplug/backend.py", "src/polydiff_myplug/data.py",
            "src/polydiff_myplug/encoders.py", "src/polydiff_myplug/io.py",
            "src/polydiff_myplug/plugin.py", "src/polydiff_myplug/tasks.py", "tests/test_polydiff_myplug.py"]


@pytest.fixture(scope="module")
def runner():
    cli_module._add_plugin_commands()
    return CliRunner()


def test_names():
    assert names_for("myplug") == {"name": "myplug", "modality": "myplug", "package": "polydiff_myplug",
                                   "distribution": "polydiff-myplug"}
    assert names_for("sea-level", "tides") == {"name": "sea-level", "modality": "tides",
                                               "package": "polydiff_sea_level",
                                               "distribution": "polydiff-sea-level"}


@pytest.mark.parametrize("name, modality, needle", [
    ("My Plugin", None, "name: 'My Plugin' is not a valid plugin name"),
    ("2d", None, "name: '2d'"),
    ("a--b", None, "name: 'a--b'"),
    ("x" * 41, None, "name:"),
    ("polydiff-foo", None, "leave out the 'polydiff' prefix"),
    ("ok", "Bad.Modality", "modality: 'Bad.Modality'"),
])
def test_bad_names_are_refused_naming_the_field(name, modality, needle):
    with pytest.raises(InvalidInputError) as info:
        names_for(name, modality)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_writes_a_complete_project(tmp_path):
    folder = new_plugin("myplug", parent=tmp_path)
    assert folder == tmp_path / "myplug"
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == EXPECTED
    assert [p.name for p in tmp_path.iterdir()] == ["myplug"]  # no staging folder left behind
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"\{\{\w+\}\}", text), path
            if path.suffix == ".py":
                ast.parse(text, str(path))
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["project"]["name"] == "polydiff-myplug"
    assert project["project"]["entry-points"]["polydiff"] == {"myplug": "polydiff_myplug.plugin"}
    assert any(d.startswith("polydiff>=") for d in project["project"]["dependencies"])
    plugin = (folder / "src/polydiff_myplug/plugin.py").read_text()
    assert plugin.count("\n@polydiff.hookimpl\n") == 3
    assert 'MODALITY = "myplug"' in (folder / "src/polydiff_myplug/data.py").read_text()
    assert 'check_plugin("myplug")' in (folder / "tests/test_polydiff_myplug.py").read_text()


def test_modality_option_names_the_modality(tmp_path):
    folder = new_plugin("sea-level", modality="tides", parent=tmp_path)
    assert 'MODALITY = "tides"' in (folder / "src/polydiff_sea_level/data.py").read_text()
    assert 'sea-level = "polydiff_sea_level.plugin"' in (folder / "pyproject.toml").read_text()


def test_never_overwrites(tmp_path):
    (tmp_path / "myplug").mkdir()
    (tmp_path / "myplug" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="name: .*myplug' already exists"):
        new_plugin("myplug", parent=tmp_path)
    assert [p.name for p in (tmp_path / "myplug").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["myplug"]


def test_names_in_use_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="a plugin called 'example' is already installed"):
        new_plugin("example", parent=tmp_path)
    with pytest.raises(InvalidInputError, match="modality: 'points2d' is provided by the catalogue plugin"):
        new_plugin("dots", modality="points2d", parent=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_templates_are_package_data():
    """core/pyproject.toml ships scaffold/template/**/*.tmpl: every template file must match."""
    files = [p for p in TEMPLATE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files and all(p.suffix == ".tmpl" for p in files), files
    core = tomllib.loads((Path(cli_module.__file__).parents[3] / "pyproject.toml").read_text())
    assert "cli/scaffold/template/**/*.tmpl" in core["tool"]["setuptools"]["package-data"]["polydiff"]


def test_cli_new(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli_module.cli, ["plugins", "new", "myplug"], prog_name="polydiff")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "myplug" and "polydiff plugins install ./myplug" in result.stderr
    again = runner.invoke(cli_module.cli, ["plugins", "new", "myplug"], prog_name="polydiff")
    assert again.exit_code == 1 and again.stderr.count("\n") == 1 and "already exists" in again.stderr
    bad = runner.invoke(cli_module.cli, ["plugins", "new", "Bad Name", "-d", str(tmp_path)], prog_name="polydiff")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: name: 'Bad Name'")
    nodir = runner.invoke(cli_module.cli, ["plugins", "new", "x", "-d", str(tmp_path / "no")], prog_name="polydiff")
    assert nodir.exit_code == 1 and "dir:" in nodir.stderr


def test_cli_check_reports_and_fails_cleanly(runner):
    unknown = runner.invoke(cli_module.cli, ["plugins", "check", "nosuch"], prog_name="polydiff")
    assert unknown.exit_code == 1 and "plugin 'nosuch' is not loaded" in unknown.stderr
    assert unknown.exception is None or isinstance(unknown.exception, SystemExit)
