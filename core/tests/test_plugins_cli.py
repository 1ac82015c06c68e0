"""`polydiff plugins`, the plugin catalogue (registry.toml), and plugin-loading failures.

Things that depend on the environment or on a fresh interpreter (POLYDIFF_PLUGINS,
POLYDIFF_STRICT_PLUGINS, broken plugins, start-up imports) run `polydiff` in a subprocess;
the rest uses click's CliRunner in this process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from importlib.metadata import version
from pathlib import Path

import polydiff
import pytest
from click.testing import CliRunner
from polydiff import cli as cli_module
from polydiff.cli.catalogue import (
    CATALOGUE_PATH,
    install_command,
    read_catalogue,
    uninstall_command,
)
from polydiff.errors import InvalidInputError, PluginError, UnknownNameError
from polydiff.plugins import BUILTIN_PLUGINS

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("polydiff")
HOOKS = {"register_schedules", "register_samplers", "register_modalities", "register_encoders",
         "register_backends", "register_commands", "on_step", "run_generation"}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def runner():
    cli_module._add_plugin_commands()
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(cli_module.cli, list(args), prog_name="polydiff")


def polydiff_cmd(*args, env=None, python=None):
    """Run the installed `polydiff` (a fresh process) with extra environment variables."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("POLYDIFF_PLUGINS", "POLYDIFF_STRICT_PLUGINS")}
    for key, value in (env or {}).items():
        if key == "PYTHONPATH" and full_env.get(key):
            value = os.pathsep.join([value, full_env[key]])
        full_env[key] = value
    if python is None and SCRIPT.exists():
        command = [str(SCRIPT), *args]
    else:
        command = [python or sys.executable, "-c", "import sys; from polydiff.cli import main; sys.exit(main())",
                   *args]
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=120)


def fake_distribution(folder: Path, name: str, module_source: str) -> None:
    """A plugin `name` from distribution `fake-<name>` whose module is `<name>_mod`."""
    (folder / f"{name}_mod.py").write_text(textwrap.dedent(module_source))
    info = folder / f"fake_{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-{name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[polydiff]\n{name} = {name}_mod\n")


@pytest.fixture
def broken_env(tmp_path):
    fake_distribution(tmp_path, "broken", 'raise RuntimeError("boom at import")\n')
    return {"PYTHONPATH": str(tmp_path)}


@pytest.fixture
def typo_env(tmp_path):
    fake_distribution(tmp_path, "typo", """
        from polydiff import hookimpl

        @hookimpl
        def register_sampler(register):  # misspelt: the hook is register_samplers
            pass
    """)
    return {"PYTHONPATH": str(tmp_path)}


def assert_clean_failure(proc, *needles):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- polydiff plugins


def test_plugins_json_lists_builtins_and_example(runner):
    result = invoke(runner, "plugins", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    by_name = {p["name"]: p for p in report["plugins"]}
    for builtin in BUILTIN_PLUGINS:
        entry = by_name[builtin]
        assert entry["builtin"] is True
        assert entry["version"] == polydiff.__version__
        assert entry["hooks"] and set(entry["hooks"]) <= HOOKS
    example = by_name["example"]
    assert example["builtin"] is False
    assert example["distribution"] == "polydiff-example"
    assert example["version"] == version("polydiff-example")
    assert "register_modalities" in example["hooks"] and set(example["hooks"]) <= HOOKS
    assert report["failed"] == []


def test_plugins_table(runner):
    result = invoke(runner, "plugins")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "version", "from", "hooks"]
    assert any(line.startswith("polydiff.builtin.samplers") and "builtin" in line for line in lines)
    assert any(line.startswith("example ") and "polydiff-example" in line for line in lines)


@pytest.mark.parametrize("value, expect_example", [("", False), ("example", True),
                                                    ("polydiff-example", True), ("other", False)])
def test_polydiff_plugins_env_limits_loading(value, expect_example):
    proc = polydiff_cmd("plugins", "--json", env={"POLYDIFF_PLUGINS": value})
    assert proc.returncode == 0, proc.stderr
    names = {p["name"] for p in json.loads(proc.stdout)["plugins"]}
    assert set(BUILTIN_PLUGINS) <= names
    assert ("example" in names) is expect_example


def test_broken_plugin_is_skipped_in_one_line(broken_env):
    for args in (("plugins", "--json"), ("samplers",)):
        proc = polydiff_cmd(*args, env=broken_env)
        assert proc.returncode == 0, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "'broken'" in lines[0] and "boom at import" in lines[0], proc.stderr
    report = json.loads(polydiff_cmd("plugins", "--json", env=broken_env).stdout)
    assert {"example", *BUILTIN_PLUGINS} <= {p["name"] for p in report["plugins"]}
    assert report["failed"] == [{"name": "broken", "distribution": "fake-broken",
                                 "error": "RuntimeError: boom at import"}]
    table = polydiff_cmd("plugins", env=broken_env).stdout
    assert "FAILED: RuntimeError: boom at import" in table and "example" in table
    samplers = polydiff_cmd("samplers", env=broken_env).stdout
    assert "ddim" in samplers


def test_broken_plugin_is_an_error_in_strict_mode(broken_env):
    proc = polydiff_cmd("samplers", env={**broken_env, "POLYDIFF_STRICT_PLUGINS": "1"})
    assert_clean_failure(proc, "'broken'", "boom at import")


def test_misspelt_hook_is_reported_and_skipped(typo_env):
    proc = polydiff_cmd("plugins", "--json", env=typo_env)
    assert proc.returncode == 0, proc.stderr
    assert "'typo'" in proc.stderr and "register_sampler" in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    assert "typo" not in {p["name"] for p in report["plugins"]}
    assert [f["name"] for f in report["failed"]] == ["typo"]
    assert "register_sampler" in report["failed"][0]["error"]
    samplers = polydiff_cmd("samplers", env=typo_env)
    assert samplers.returncode == 0 and "ddim" in samplers.stdout


def test_misspelt_hook_is_an_error_in_strict_mode(typo_env):
    proc = polydiff_cmd("plugins", env={**typo_env, "POLYDIFF_STRICT_PLUGINS": "1"})
    assert_clean_failure(proc, "'typo'", "register_sampler")


def test_hook_with_wrong_arguments_is_skipped(tmp_path):
    fake_distribution(tmp_path, "badargs", """
        from polydiff import hookimpl

        @hookimpl
        def register_samplers(reg):  # the hook's argument is called `register`
            pass
    """)
    proc = polydiff_cmd("samplers", env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "'badargs'" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "ddim" in proc.stdout


def test_help_and_plugins_do_not_import_torch(capsys):
    probe = textwrap.dedent("""
        import sys, time
        from polydiff.cli import main
        start = time.perf_counter()
        try:
            main(sys.argv[1:])
        except SystemExit as exc:
            assert not exc.code, exc.code
        heavy = sorted(m for m in ("torch", "numpy", "polydiff.generation", "polydiff.samplers")
                       if m in sys.modules)
        print("HEAVY", heavy, file=sys.stderr)
    """)
    for args in (["--help"], ["plugins"], ["plugins", "--json"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "HEAVY []" in proc.stderr, (args, proc.stderr)
    timings = {}
    for args in (("--help",), ("plugins",)):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            proc = polydiff_cmd(*args)
            best = min(best, time.perf_counter() - start)
            assert proc.returncode == 0, proc.stderr
        timings[" ".join(args)] = best
    with capsys.disabled():
        print("\n  wall time (best of 3): " +
              ", ".join(f"`polydiff {k}` {v * 1000:.0f} ms" for k, v in timings.items()))


# --------------------------------------------------------------------------- errors without tracebacks


@pytest.mark.parametrize("args, message", [
    (["generate", "nosuchmodality"], "unknown modality 'nosuchmodality'"),
    (["generate", "points2d", "--sampler", "nosuch"], "unknown sampler 'nosuch'"),
    (["plugins", "install", "exampel"], "did you mean 'example'"),
    (["plugins", "uninstall", "exampel"], "did you mean 'example'"),
    (["plugins", "install", "./no/such/folder"], "does not exist"),
])
def test_bad_input_is_one_clear_error(runner, tmp_path, args, message):
    if args[0] == "generate" and "points2d" in args:
        args = [*args, "-o", str(tmp_path)]
        try:
            from polydiff.registries import components
            components().modalities.get_named("points2d")
        except UnknownNameError:
            pytest.skip("the example plugin does not provide points2d yet")
    result = invoke(runner, *args)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert message in result.stderr and "Traceback" not in result.output, result.output


# --------------------------------------------------------------------------- the catalogue


def test_catalogue_is_the_repository_file():
    """The package reads the root registry.toml itself (through a symlink), not a copy."""
    assert CATALOGUE_PATH.resolve() == (REPO / "registry.toml").resolve()
    assert read_catalogue().plugins == read_catalogue(REPO / "registry.toml").plugins
    assert read_catalogue().root == REPO


def test_catalogue_parses():
    catalogue = read_catalogue()
    example = catalogue.get("example")
    assert catalogue.get("polydiff-example") is example
    assert example.distribution == "polydiff-example"
    assert example.source == "plugins/example" and example.is_folder
    assert "points2d" in example.modalities and {"generate", "inpaint"} <= set(example.tasks)
    assert example.description
    for entry in catalogue.plugins.values():  # every folder source is really there
        if entry.is_folder:
            assert (catalogue.source_folder(entry) / "pyproject.toml").is_file(), entry.name


GOOD = """
[plugins.good]
distribution = "polydiff-good"
source = "polydiff-good>=1.0"
description = "fine"
"""


@pytest.mark.parametrize("entry, needles", [
    ('distribution = "polydiff-bad"\ndescription = "x"', ["source: Field required"]),
    ('distribution = "polydiff-bad"\nsource = "plugins/bad"\ndescription = "x"\ntasks = "generate"',
     ["tasks: Input should be a valid list"]),
    ('distribution = "polydiff-bad"\nsource = "plugins/bad"\ndescription = "x"\nmodalities = [1]',
     ["modalities.0: Input should be a valid string"]),
    ('distribution = "polydiff-bad"\nsorce = "plugins/bad"\ndescription = "x"',
     ["sorce: unknown field; did you mean 'source'?", "source: Field required"]),
    ('distribution = "polydiff bad"\nsource = "plugins/bad"\ndescription = "x"',
     ["distribution: 'polydiff bad' is not a valid name"]),
    ('distribution = "polydiff-bad"\nsource = "x"\ndescription = "x"\nrequires = ["scipy >= 1", "SciPy"]',
     ["requires: 'SciPy' is listed twice"]),
    ('distribution = "polydiff-bad"\nsource = "x"\ndescription = "x"\nrequires = ["not a requirement"]',
     ["requires: 'not a requirement' is neither a plugin's name nor a pip requirement"]),
    ('name = "other"\ndistribution = "polydiff-bad"\nsource = "x"\ndescription = "x"', ["field 'name'"]),
    ('distribution = "polydiff-bad"\nsource = "/abs/bad"\ndescription = "x"', ["relative"]),
])
def test_broken_catalogue_entry_is_named(tmp_path, entry, needles):
    path = tmp_path / "registry.toml"
    path.write_text(GOOD + "\n[plugins.bad]\n" + entry + "\n")
    with pytest.raises(InvalidInputError) as info:
        read_catalogue(path)
    message = str(info.value)
    assert "plugin 'bad'" in message and "'good'" not in message, message
    for needle in needles:
        assert needle in message, message


def test_catalogue_file_errors(tmp_path):
    with pytest.raises(PluginError, match="not found"):
        read_catalogue(tmp_path / "missing.toml")
    (tmp_path / "a.toml").write_text("[plugins.x\n")
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        read_catalogue(tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text(GOOD + "\n[plugin.typo]\n")
    with pytest.raises(InvalidInputError, match="unknown top-level key 'plugin'"):
        read_catalogue(tmp_path / "b.toml")


def test_plugins_available(runner):
    result = invoke(runner, "plugins", "available")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("example "))
    assert version("polydiff-example") in row and "points2d" in row
    listed = json.loads(invoke(runner, "plugins", "available", "--json").stdout)
    example = next(e for e in listed if e["name"] == "example")
    assert example["installed"] == version("polydiff-example")
    assert example["source"] == "plugins/example"


# --------------------------------------------------------------------------- install / uninstall


def test_install_and_uninstall_commands_for_example(runner):
    pip = [sys.executable, "-m", "pip"]
    constraints = ["-c", str(REPO / "constraints.txt")] if (REPO / "constraints.txt").exists() else []
    expected = [*pip, "install", *constraints, "-e", str(REPO / "plugins" / "example")]
    assert install_command("example") == expected
    assert install_command("polydiff-example") == expected
    assert uninstall_command("example") == [*pip, "uninstall", "-y", "polydiff-example"]
    result = invoke(runner, "plugins", "install", "example", "--dry-run", "--", "--no-deps")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("plugins/example --no-deps"), result.stdout
    result = invoke(runner, "plugins", "uninstall", "example", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("uninstall -y polydiff-example")


def test_install_command_for_packages_paths_and_missing_folders(tmp_path):
    (tmp_path / "registry.toml").write_text(GOOD + textwrap.dedent("""
        requires = ["scipy>=1"]

        [plugins.planned]
        distribution = "polydiff-planned"
        source = "plugins/planned"
        description = "not written yet"
    """))
    catalogue = read_catalogue(tmp_path / "registry.toml")
    pip = [sys.executable, "-m", "pip"]
    assert install_command("good", catalogue) == [*pip, "install", "polydiff-good>=1.0", "scipy>=1"]
    with pytest.raises(PluginError, match="source folder .*plugins/planned.* does not exist"):
        install_command("planned", catalogue)
    with pytest.raises(UnknownNameError, match="did you mean 'good'"):
        install_command("goood", catalogue)
    with pytest.raises(UnknownNameError, match="did you mean 'good'"):
        uninstall_command("goood", catalogue)
    (tmp_path / "constraints.txt").write_text("")
    project = tmp_path / "my-plugin"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    assert install_command(str(project), catalogue) == [
        *pip, "install", "-c", str(tmp_path / "constraints.txt"), "-e", str(project)]
    with pytest.raises(InvalidInputError, match="not a Python project"):
        install_command(str(tmp_path), catalogue)


# --------------------------------------------------------------------------- requires


def entry(name: str, requires=(), source=None) -> str:
    """One catalogue table; a folder source under plugins/ unless ``source`` is given."""
    return textwrap.dedent(f"""
        [plugins.{name}]
        distribution = "polydiff-{name}"
        source = "{source or f'plugins/{name}'}"
        requires = {json.dumps(list(requires))}
        description = "{name}"
    """)


def write_catalogue(folder: Path, *entries: str, folders=True) -> Path:
    """A catalogue in ``folder`` with a constraints.txt and, for folder sources, the folders."""
    path = folder / "registry.toml"
    path.write_text("".join(entries))
    (folder / "constraints.txt").write_text("")
    if folders:
        for table in read_catalogue(path).plugins.values():
            if table.is_folder:
                (folder / table.source).mkdir(parents=True, exist_ok=True)
    return path


def test_image_audio_and_video_require_the_text_plugin():
    catalogue = read_catalogue()
    text = catalogue.get("text")
    for name in ("image", "audio", "video"):
        entry = catalogue.get(name)
        assert catalogue.required_plugins(entry) == [text]
        assert catalogue.pip_requirements(entry) == []
        assert [e.name for e in catalogue.install_order(name)] == ["text", name]
    # diffusers requires image, so text too: dependents are transitive
    assert catalogue.dependents("text") == ["audio", "diffusers", "image", "video"]
    assert catalogue.dependents("image") == ["diffusers"] and catalogue.dependents("video") == []
    assert catalogue.install_order("text") == [text]


def test_the_diffusers_plugin_requires_image_and_the_diffusers_library():
    catalogue = read_catalogue()
    entry = catalogue.get("diffusers")
    assert [e.name for e in catalogue.required_plugins(entry)] == ["image"]
    assert [r.split("==")[0] for r in catalogue.pip_requirements(entry)] == ["diffusers", "transformers", "accelerate"]
    assert [e.name for e in catalogue.install_order("diffusers")] == ["text", "image", "diffusers"]


def test_catalogue_requires_match_the_pyprojects():
    """The polydiff-* dependencies of each folder plugin's pyproject are exactly the catalogue
    plugins its entry requires, so `pip install` and `polydiff plugins install` agree."""
    import re

    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    catalogue = read_catalogue()
    for entry in catalogue.plugins.values():
        if not entry.is_folder:
            continue
        project = tomllib.loads((catalogue.source_folder(entry) / "pyproject.toml").read_text())["project"]
        names = {re.match(r"[A-Za-z0-9._-]+", d).group(0).lower().replace("_", "-")
                 for d in project.get("dependencies", [])}
        plugins = {n for n in names if n.startswith("polydiff-")}
        assert plugins == {p.distribution for p in catalogue.required_plugins(entry)}, entry.name
        assert project["name"] == entry.distribution


def test_install_image_installs_the_text_plugin_first(runner):
    pip = [sys.executable, "-m", "pip", "install"]
    constraints = ["-c", str(REPO / "constraints.txt")] if (REPO / "constraints.txt").exists() else []
    expected = [*pip, *constraints, "-e", str(REPO / "plugins" / "text"), "-e", str(REPO / "plugins" / "image")]
    assert install_command("image") == expected
    assert install_command("polydiff-image") == expected
    result = invoke(runner, "plugins", "install", "image", "--dry-run", "--", "--no-deps")
    assert result.exit_code == 0, result.output
    commands = result.stdout.strip().splitlines()
    assert len(commands) == 1, result.stdout  # one pip command: pip resolves polydiff-text from its folder
    assert commands[0].endswith("plugins/text -e " + str(REPO / "plugins" / "image") + " --no-deps"), commands
    assert "image requires text: installing text, image" in result.stderr, result.stderr
    text_only = invoke(runner, "plugins", "install", "text", "--dry-run")
    assert text_only.exit_code == 0 and text_only.stdout.strip().endswith("plugins/text"), text_only.output
    assert "requires" not in text_only.stderr


def test_install_order_is_dependencies_first_each_once(tmp_path):
    path = write_catalogue(
        tmp_path,
        entry("top", ["polydiff-left", "right", "numpy>=1.26"]),
        entry("left", ["polydiff-base", "scipy>=1"]),
        entry("right", ["polydiff_base", "scipy>=1"], source="polydiff-right>=2"),
        entry("base"),
        entry("alone", ["scipy>=1"], source="polydiff-alone==0.3"),
    )
    catalogue = read_catalogue(path)
    assert [e.name for e in catalogue.install_order("top")] == ["base", "left", "right", "top"]
    assert catalogue.dependents("base") == ["left", "right", "top"]
    pip = [sys.executable, "-m", "pip", "install", "-c", str(tmp_path / "constraints.txt")]
    folder = lambda name: str(tmp_path / "plugins" / name)  # noqa: E731
    assert install_command("top", catalogue, extra=["-q"]) == [
        *pip, "-e", folder("base"), "-e", folder("left"), "polydiff-right>=2", "-e", folder("top"),
        "scipy>=1", "numpy>=1.26", "-q"]
    assert install_command("polydiff-right", catalogue) == [
        *pip, "-e", folder("base"), "polydiff-right>=2", "scipy>=1"]
    assert install_command("alone", catalogue) == [*pip, "polydiff-alone==0.3", "scipy>=1"]


def test_a_required_plugin_missing_from_the_checkout_is_clear(tmp_path):
    path = write_catalogue(tmp_path, entry("top", ["base"]), entry("base"), folders=False)
    (tmp_path / "plugins" / "top").mkdir(parents=True)
    with pytest.raises(PluginError, match=r"plugin 'base': source folder .*plugins/base.* does not exist"):
        install_command("top", read_catalogue(path))


@pytest.mark.parametrize("tables, needles", [
    ([entry("a", ["b"]), entry("b", ["polydiff-a"])], ["requires form a cycle: a -> b -> a"]),
    ([entry("a", ["b"]), entry("b", ["c"]), entry("c", ["b"])], ["requires form a cycle: b -> c -> b"]),
    ([entry("a", ["polydiff-a"])], ["requires form a cycle: a -> a"]),  # by name, "a" is the pip library a
    ([entry("a", ["polydiff-txet"]), entry("text")],
     ["plugin 'a': field 'requires': unknown plugin 'polydiff-txet'; did you mean 'polydiff-text'?",
      "must be a plugin of this catalogue"]),
    ([entry("a", ["polydiff-b>=1.0"]), entry("b")],
     ["plugin 'a': field 'requires': 'polydiff-b>=1.0' names the catalogue plugin 'b'; list it alone"]),
])
def test_broken_requires_are_one_clear_line(tmp_path, tables, needles):
    path = tmp_path / "registry.toml"
    path.write_text("".join(tables))
    with pytest.raises(InvalidInputError) as info:
        read_catalogue(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: invalid plugin catalogue: "), message
    for needle in needles:
        assert needle in message, message


def test_cli_install_with_a_broken_catalogue_is_one_line(runner, tmp_path, monkeypatch):
    path = tmp_path / "registry.toml"
    path.write_text(entry("a", ["b"]) + entry("b", ["a"]))
    monkeypatch.setattr("polydiff.cli.catalogue.CATALOGUE_PATH", path)
    for args in (["install", "a", "--dry-run"], ["install", "b"], ["available"]):
        result = invoke(runner, "plugins", *args)
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "requires form a cycle: a -> b -> a" in lines[0], result.output
        assert result.stdout == ""


def test_uninstall_warns_about_plugins_that_need_it(runner):
    from polydiff.cli.catalogue import installed_version

    needing = [n for n in ("audio", "diffusers", "image", "video") if installed_version(f"polydiff-{n}")]
    if not needing or not installed_version("polydiff-text"):  # pragma: no cover
        pytest.skip("the text plugin and a plugin that requires it are not both installed")
    result = invoke(runner, "plugins", "uninstall", "text", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("uninstall -y polydiff-text")
    assert f"{', '.join(needing)} require" in result.stderr and "stop working" in result.stderr, result.stderr
    quiet = invoke(runner, "plugins", "uninstall", needing[0], "--dry-run")  # nothing needs it
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr, quiet.output


def test_uninstall_not_installed_is_clear(runner, tmp_path, monkeypatch):
    monkeypatch.setattr("polydiff.cli.catalogue.CATALOGUE_PATH", tmp_path / "registry.toml")
    (tmp_path / "registry.toml").write_text(GOOD)
    result = invoke(runner, "plugins", "uninstall", "good")
    assert result.exit_code == 1 and "not installed" in result.stderr, result.output


@pytest.mark.slow
def test_install_then_uninstall_a_local_plugin(tmp_path, capsys):
    """Really runs pip: a tiny plugin folder into a throw-away venv that sees this one's packages."""
    import site
    import sysconfig
    import venv

    start = time.perf_counter()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    assert ours in site.getsitepackages() or ours in sys.path
    Path(purelib, "zz_parent.pth").write_text(f"import site; site.addsitedir({ours!r})\n")

    project = tmp_path / "tiny"
    (project / "tiny_plugin").mkdir(parents=True)
    (project / "tiny_plugin" / "__init__.py").write_text(textwrap.dedent("""
        from polydiff import hookimpl

        @hookimpl
        def register_samplers(register):
            def tiny(denoiser, x, sigmas, **kw):
                "A tiny test sampler."
                return x
            register("tiny", tiny)
    """))
    (project / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "polydiff-tiny"
        version = "0.0.1"
        [project.entry-points.polydiff]
        tiny = "tiny_plugin"
        [tool.setuptools]
        packages = ["tiny_plugin"]
    """))
    pip_flags = ["--", "--no-build-isolation", "--no-deps", "--no-index", "-q"]
    proc = polydiff_cmd("plugins", "install", str(project), *pip_flags, python=str(python))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(python) in proc.stderr  # the pip of the environment polydiff runs in
    listed = json.loads(polydiff_cmd("plugins", "--json", python=str(python)).stdout)
    tiny = next(p for p in listed["plugins"] if p["name"] == "tiny")
    assert tiny["version"] == "0.0.1" and tiny["hooks"] == ["register_samplers"]
    assert "tiny" in polydiff_cmd("samplers", python=str(python)).stdout
    proc = polydiff_cmd("plugins", "uninstall", "tiny", "--", "-q", python=str(python))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = json.loads(polydiff_cmd("plugins", "--json", python=str(python)).stdout)
    assert "tiny" not in {p["name"] for p in listed["plugins"]}
    with capsys.disabled():
        print(f"\n  install/uninstall round trip: {time.perf_counter() - start:.1f} s")
