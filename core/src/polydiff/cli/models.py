"""``polydiff models``: names for users' own model folders (see ``polydiff.user_models``)."""
from __future__ import annotations

import click


@click.group()
def models() -> None:
    """Name your own model folders, for backends that run them (``--backend diffusers``)."""


@models.command("add")
@click.argument("name")
@click.argument("folder", type=click.Path())
@click.option("--replace", is_flag=True, help="replace the folder a taken NAME points to")
def add(name, folder, replace) -> None:
    """Call FOLDER by NAME: then ``--model NAME`` works wherever ``--model FOLDER`` does."""
    from ..user_models import add_model, config_folder

    path = add_model(name, folder, replace=replace)
    click.echo(f"{name} -> {path} (kept in {config_folder() / 'models.json'})")


@models.command("list")
def list_models() -> None:
    """The names added, with their folders."""
    from ..user_models import registered_models

    found = registered_models()
    if not found:
        click.echo("no models added (polydiff models add NAME FOLDER)")
    for name, path in found.items():
        click.echo(f"{name}  {path}")


@models.command("remove")
@click.argument("name")
def remove(name) -> None:
    """Forget NAME (the folder itself is left alone)."""
    from ..user_models import remove_model

    remove_model(name)
    click.echo(f"removed {name}")
