"""``polydiff plugins``: list loaded plugins, browse the catalogue, install and uninstall.

Only click and the standard library are imported at module level; listing plugins never
imports torch, and the catalogue (pydantic) is read only by the commands that need it.
"""
from __future__ import annotations

import json
import shlex
import subprocess

import click


def _table(rows, headers):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def plugin_report() -> dict:
    """What ``polydiff plugins --json`` prints: loaded plugins with versions and hooks, and the
    plugins that were skipped with their one-line reason."""
    from importlib.metadata import entry_points

    from .. import __version__
    from ..plugins import BUILTIN_PLUGINS, failures, load_plugins, versions

    pm = load_plugins()
    dists = {ep.name: (ep.dist.name if ep.dist else None) for ep in entry_points(group="polydiff")}
    loaded = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        builtin = name in BUILTIN_PLUGINS
        hooks = sorted({h.name for h in pm.get_hookcallers(plugin) or ()})
        loaded.append({
            "name": name,
            "builtin": builtin,
            "distribution": "polydiff" if builtin else dists.get(name),
            "version": __version__ if builtin else versions.get(name),
            "hooks": hooks,
        })
    loaded.sort(key=lambda p: (not p["builtin"], p["name"]))
    failed = [{"name": name, "distribution": dists.get(name), "error": reason}
              for name, reason in sorted(failures.items())]
    return {"plugins": loaded, "failed": failed}


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.option("--deep", is_flag=True, help="also run every plugin's register_* hooks (imports torch), "
              "so a plugin that fails there, or registers a taken name, is listed as FAILED")
@click.pass_context
def plugins(ctx, as_json, deep) -> None:
    """List loaded plugins with their versions and hooks; browse, install and remove plugins.

    A plugin that failed (import, a hook, a taken name) is disabled and listed as FAILED with the
    reason. POLYDIFF_PLUGINS=a,b loads only those plugins (empty: only the built-ins);
    POLYDIFF_STRICT_PLUGINS=1 makes a plugin that fails an error.
    """
    if ctx.invoked_subcommand is not None:
        return
    if deep:
        from ..registries import components

        components()  # disables (and so lists as failed) each plugin whose hook fails
    report = plugin_report()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = [(p["name"], p["version"] or "?", "builtin" if p["builtin"] else (p["distribution"] or "?"),
             ", ".join(p["hooks"]) or "-") for p in report["plugins"]]
    rows += [(f["name"], "-", f["distribution"] or "?", f"FAILED: {f['error']}") for f in report["failed"]]
    _table(rows, ("name", "version", "from", "hooks"))


@plugins.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def available(as_json) -> None:
    """List the plugins in the catalogue (registry.toml), marking the installed ones."""
    from .catalogue import installed_version, read_catalogue

    catalogue = read_catalogue()
    entries = []
    for _name, entry in sorted(catalogue.plugins.items()):
        entries.append({**entry.model_dump(), "installed": installed_version(entry.distribution)})
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    _table([(e["name"], e["installed"] or "no", ", ".join(e["modalities"]) or "-",
             ", ".join(e["tasks"]) or "-", e["description"]) for e in entries],
           ("name", "installed", "modalities", "tasks", "description"))


def _run_pip(ctx, command: list[str], dry_run: bool) -> None:
    click.echo(shlex.join(command), err=not dry_run)
    if dry_run:
        return
    returncode = subprocess.call(command)  # pip's output streams straight through
    if returncode != 0:
        click.echo(f"Error: pip exited with status {returncode}", err=True)
        ctx.exit(returncode)


@plugins.command()
@click.argument("name")
@click.argument("pip_args", nargs=-1, type=click.UNPROCESSED)
@click.option("-e", "--editable/--no-editable", "editable", default=True,
              help="install a local folder editable (the default; catalogue folders always are)")
@click.option("--dry-run", is_flag=True, help="print the pip command instead of running it")
@click.pass_context
def install(ctx, name, pip_args, editable, dry_run) -> None:
    """Install plugin NAME (from the catalogue, or a local folder such as ./my-plugin) with pip,
    into this environment, together with the catalogue plugins it requires (one pip command,
    dependencies first). Arguments after `--` go to pip."""
    from .catalogue import install_command, is_path, read_catalogue

    catalogue = None
    if not is_path(name):
        catalogue = read_catalogue()
        if name in catalogue.names():
            order = [e.name for e in catalogue.install_order(name)]
            if len(order) > 1:
                click.echo(f"{order[-1]} requires {', '.join(order[:-1])}: installing "
                           f"{', '.join(order)}", err=True)
    _run_pip(ctx, install_command(name, catalogue, editable=editable, extra=pip_args), dry_run)
    if not dry_run:
        click.echo(f"installed {name}; `polydiff plugins` lists what loads", err=True)


@plugins.command()
@click.argument("name")
@click.argument("pip_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--dry-run", is_flag=True, help="print the pip command instead of running it")
@click.pass_context
def uninstall(ctx, name, pip_args, dry_run) -> None:
    """Uninstall plugin NAME (a catalogue or installed plugin, or its distribution) with pip."""
    from ..errors import InvalidInputError
    from .catalogue import installed_version, read_catalogue, uninstall_command, uninstall_distribution

    catalogue = read_catalogue()
    dist = uninstall_distribution(name, catalogue)
    if installed_version(dist) is None:
        raise InvalidInputError(f"plugin {name!r} is not installed (distribution {dist!r})")
    if name in catalogue.names():
        needing = [d for d in catalogue.dependents(name)
                   if installed_version(catalogue.plugins[d].distribution) is not None]
        if needing:
            click.echo(f"warning: {', '.join(needing)} require{'s' if len(needing) == 1 else ''} "
                       f"{name} and will stop working without it", err=True)
    _run_pip(ctx, uninstall_command(name, catalogue, extra=pip_args), dry_run)


@plugins.command()
@click.argument("name")
@click.option("--modality", help="name of the modality the plugin registers (default: NAME)")
@click.option("-d", "--dir", "parent", default=".", show_default=True,
              help="folder to create the plugin project in")
def new(name, modality, parent) -> None:
    """Create a new plugin project NAME: an installable distribution (pyproject with the
    `polydiff` entry point, a modality, encoders, a tiny exact denoiser, a data generator, tests
    that run polydiff's conformance kit, a README). Never overwrites an existing folder."""
    from .scaffold import new_plugin

    folder = new_plugin(name, modality=modality, parent=parent)
    shown = folder if folder.is_absolute() else f"./{folder}"
    click.echo(str(folder))
    click.echo(f"created {shown}; next:\n"
               f"  polydiff plugins install {shown}\n"
               f"  polydiff generate {modality or name} \"a wave\" -n 4 -o out/{modality or name}\n"
               f"  python -m pytest {shown}/tests", err=True)


@plugins.command()
@click.argument("name")
@click.option("--device", "devices", multiple=True, help="device to check on (repeatable; default: cpu, "
              "plus cuda when present)")
def check(name, devices) -> None:
    """Run polydiff's conformance kit on installed plugin NAME and print its report
    (exit status 1 when a check fails)."""
    from ..testing import ConformanceError, check_plugin

    try:
        report = check_plugin(name, devices=list(devices) or None, raise_on_failure=False)
    except ConformanceError as exc:  # e.g. no such plugin
        raise click.ClickException(str(exc)) from None
    click.echo(str(report))
    if not report.ok:
        raise SystemExit(1)
