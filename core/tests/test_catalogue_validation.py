"""Catalogue values never reach pip unchecked: `requires` items are PEP 508 requirements by name
(no pip options, no URLs), a `source` is a folder inside the repository or an index package, and
no catalogue plugin's `distribution` is polydiff or one of its dependencies (`plugins uninstall`
would remove it)."""
from __future__ import annotations

import json

import pytest
from polydiff.cli.catalogue import install_command, read_catalogue, uninstall_distribution
from polydiff.errors import InvalidInputError

GOOD = """
[plugins.good]
distribution = "polydiff-good"
source = "polydiff-good>=1.0"
description = "fine"
"""


def write(tmp_path, fields: str):
    path = tmp_path / "registry.toml"
    path.write_text(GOOD + "\n[plugins.bad]\n" + fields + "\n")
    return path


def entry(source="plugins/bad", distribution="polydiff-bad", requires=()):
    return (f"distribution = '{distribution}'\nsource = '{source}'\ndescription = 'x'\n"
            f"requires = {json.dumps(list(requires))}")  # a JSON list of strings is a TOML array


BAD = [
    (entry(requires=["--extra-index-url=https://evil.example/simple"]), "requires", "pip option"),
    (entry(requires=["--target=/tmp/x"]), "requires", "pip option"),
    (entry(requires=["-e ."]), "requires", "pip option"),
    (entry(requires=["pkg @ file:///etc"]), "requires", "URL"),
    (entry(requires=["pkg @ https://evil.example/pkg.whl"]), "requires", "URL"),
    (entry(requires=["https://evil.example/pkg.whl"]), "requires", "URL"),
    (entry(requires=["scipy>="]), "requires", "PEP 508"),
    (entry(requires=["scipy; rm -rf /"]), "requires", "requirement"),
    (entry(requires=["sci py"]), "requires", "PEP 508"),
    (entry(source="--index-url=https://evil.example"), "source", "pip option"),
    (entry(source="https://evil.example/pkg.tar.gz"), "source", "URL"),
    (entry(source="pkg @ file:///etc"), "source", "URL"),
    (entry(source="../outside"), "source", "leaves the repository"),
    (entry(source="plugins/../../outside"), "source", "leaves the repository"),
    (entry(source="~/plugin"), "source", "relative"),
    (entry(source="C:/plugin"), "source", "relative"),
    (entry(source="plugins/with space"), "source", "folder names"),
    (entry(distribution="torch"), "distribution", "polydiff or one of its dependencies"),
    (entry(distribution="NumPy"), "distribution", "polydiff or one of its dependencies"),
    (entry(distribution="pydantic_core"), "distribution", "polydiff or one of its dependencies"),
    (entry(distribution="polydiff"), "distribution", "polydiff or one of its dependencies"),
    (entry() + "\nmodalities = ['two words']", "modalities", "not a valid name"),
]


@pytest.mark.parametrize("fields, field, needle", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_a_bad_catalogue_value_is_one_line_naming_plugin_and_field(tmp_path, fields, field, needle):
    with pytest.raises(InvalidInputError) as info:
        read_catalogue(write(tmp_path, fields))
    message = str(info.value)
    assert "\n" not in message and "plugin 'bad'" in message and f"{field}:" in message, message
    assert needle in message and "'good'" not in message, message


@pytest.mark.parametrize("requires", [
    ["scipy"], ["scipy>=1.10"], ["scipy>=1.10,<2"], ["scipy[sparse]~=1.11"],
    ["scipy>=1; python_version < '3.12'"], ["polydiff-good"],
])
def test_plain_requirements_pass(tmp_path, requires):
    catalogue = read_catalogue(write(tmp_path, entry(requires=requires)))
    assert catalogue.plugins["bad"].requires == requires


def test_a_folder_source_linking_out_of_the_repository_is_refused(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "pyproject.toml").write_text("")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "plugins").mkdir()
    (repo / "plugins" / "bad").symlink_to(tmp_path / "outside")
    path = repo / "registry.toml"
    path.write_text(GOOD + "\n[plugins.bad]\n" + entry() + "\n")
    catalogue = read_catalogue(path)
    with pytest.raises(InvalidInputError, match="leaves the repository"):
        install_command("bad", catalogue)


def test_the_shipped_catalogue_passes_and_installs_only_folders_and_names():
    catalogue = read_catalogue()
    for name in catalogue.plugins:
        command = install_command(name, catalogue)
        pip_args = command[command.index("install") + 1:]
        assert not [a for a in pip_args if a.startswith("-") and a not in ("-c", "-e")], command


def test_uninstall_never_removes_a_core_dependency():
    for name in ("torch", "numpy", "pluggy", "pydantic"):
        with pytest.raises(InvalidInputError, match="dependencies, not a plugin"):
            uninstall_distribution(name, read_catalogue())


def test_a_plugin_named_after_a_library_requires_that_library_by_its_name(tmp_path):
    path = tmp_path / "registry.toml"
    path.write_text(GOOD + "\n[plugins.wrapped]\n" + entry(distribution="polydiff-wrapped",
                                                          requires=["wrapped==1.2", "good"]) + "\n")
    catalogue = read_catalogue(path)
    wrapped = catalogue.plugins["wrapped"]
    assert catalogue.pip_requirements(wrapped) == ["wrapped==1.2"]          # the library, passed to pip
    assert [p.name for p in catalogue.required_plugins(wrapped)] == ["good"]  # another plugin's name is that plugin
    path.write_text(GOOD + "\n[plugins.other]\n" + entry(distribution="polydiff-other", requires=["good==1.0"]) + "\n")
    with pytest.raises(InvalidInputError, match="names the catalogue plugin 'good'"):
        read_catalogue(path)   # a version on another catalogue plugin is still refused
