"""The ``polydiff`` command line. Heavy modules are imported inside commands, so ``--help``
and ``polydiff plugins`` start without torch."""
from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from ..errors import PolydiffError, one_line
from .plugins import _table
from .tune import tune_steps


class Group(click.Group):
    """Turns a user's mistake into one line on stderr (``Error: field: message``) and exit code 1,
    without a traceback: a ``PolydiffError``, or a pydantic ``ValidationError`` that a plugin let
    through (formatted by ``polydiff.request.describe``, the formatter the API uses)."""

    def invoke(self, ctx) -> Any:
        try:
            return super().invoke(ctx)
        except PolydiffError as exc:
            raise click.ClickException(_one_line(str(exc))) from None
        except ValueError as exc:
            pydantic = sys.modules.get("pydantic")  # only loaded if something validated with it
            if pydantic is None or not isinstance(exc, pydantic.ValidationError):
                raise
            from ..request import describe

            raise click.ClickException(_one_line(describe(exc))) from None


def _one_line(message: str) -> str:
    return one_line(message, "invalid input")


@click.group(cls=Group)
@click.version_option(package_name="polydiff")
def cli() -> None:
    """polydiff: plugin-based multimodal diffusion.

    Generate with `polydiff generate MODALITY PROMPT`, list what plugins provide with
    `polydiff plugins`, `samplers`, `schedules` and `modalities`.
    """


def _split_extra(args) -> tuple[str | None, dict]:
    """``["a prompt", "--seconds", "2"]`` -> ("a prompt", {"seconds": 2}); option values are
    parsed as JSON when they can be (numbers, true/false), else kept as strings."""
    prompt, options, i = None, {}, 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) < 3:
            if prompt is not None:
                raise click.UsageError(f"unexpected argument {token!r} (quote a prompt with spaces)")
            prompt, i = token, i + 1
            continue
        key = token[2:].replace("-", "_")
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, i = args[i + 1], i + 2
        else:
            value, i = "true", i + 1
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return prompt, options


class GenerateCommand(click.Command):
    """``generate MODALITY --help`` also lists that modality's tasks and their options."""

    def parse_args(self, ctx, args) -> list[str]:
        ctx.meta["polydiff.words"] = [a for a in args if not a.startswith("-")]
        return super().parse_args(ctx, args)

    def format_epilog(self, ctx, formatter) -> None:
        from ..registries import components

        words = ctx.meta.get("polydiff.words") or []
        modality = components().modalities.get(words[0]) if words else None
        if modality is None:
            formatter.write_paragraph()
            formatter.write_text("`polydiff generate MODALITY --help` lists the modality's tasks and options.")
            return
        from .tasks import tasks_text

        formatter.write_paragraph()
        formatter.write(f"Tasks of {modality.name} (--task NAME) and their options:\n")
        formatter.write("".join(f"  {line}\n" for line in tasks_text(modality).splitlines()))


@cli.command(cls=GenerateCommand, context_settings=dict(ignore_unknown_options=True))
@click.argument("modality")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("-n", "n", type=int, default=1, show_default=True, help="number of samples")
@click.option("--task", default="generate", show_default=True)
@click.option("--steps", type=int, help="sampler steps (default: the modality's)")
@click.option("--sampler", help="see `polydiff samplers`")
@click.option("--spacing", help="uniform, trailing, karras, logsnr, ...")
@click.option("--guidance", type=float, help="classifier-free guidance scale")
@click.option("--sampler-option", "sampler_options", multiple=True, metavar="NAME=VALUE",
              help="an option of the sampler itself, e.g. eta=0.5 or block=4 (repeat for several)")
@click.option("--seed", type=int, help="sample i uses seed + i (random if omitted; recorded); with --prompts see docs/batch.md")
@click.option("--device", default="auto", show_default=True)
@click.option("--backend", help="denoiser backend (default: the modality's)")
@click.option("--model", help="your model, for a backend that runs one: a folder or a `polydiff models` name")
@click.option("--init", help="input file, for the tasks that need one")
@click.option("--mask", help="mask file, for the tasks that need one")
@click.option("-o", "--out", help="output folder, new or empty (default: a new out/MODALITY-NNNN)")
@click.option("--overwrite", is_flag=True, help="replace the earlier result in --out as a whole")
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--prompts", type=click.Path(dir_okay=False),
              help="a batch: one prompt or JSON request per line, one folder per line under --out (docs/batch.md)")
def generate(modality, args, out, overwrite, quiet, prompts, **fields) -> None:
    """Generate or edit samples: MODALITY [PROMPT] [--OPTION VALUE ...].

    Options this command does not know (``--seconds 2``) are the task's own options.
    """
    from ..generation import generate as run_generate
    from ..output import OutputFolder, next_run_folder

    prompt, options = _split_extra(list(args))
    fields = {k: v for k, v in fields.items() if v is not None}
    if fields.get("sampler_options"):
        fields["sampler_options"] = _sampler_options(fields["sampler_options"])
    else:
        fields.pop("sampler_options", None)
    if prompts is not None:
        if prompt is not None:
            raise click.UsageError("give a PROMPT or --prompts FILE, not both")
        from .batch import run_batch

        if out is None and os.environ.get("WORLD_SIZE", "1") != "1":
            raise click.UsageError("--prompts under torchrun needs -o FOLDER, the same for every process")
        out = out if out is not None else next_run_folder("out", f"{modality}-batch")
        manifest = run_batch(modality, prompts, out, quiet, fields, options)
        if manifest is not None:  # rank 0 (or the only process) wrote it
            click.echo(str(manifest))
        return
    with OutputFolder(out if out is not None else next_run_folder("out", modality), overwrite) as folder:
        result = run_generate(modality, prompt, progress=not quiet, **fields, **options)
        for path in folder.write(result):
            click.echo(str(path))


def _sampler_options(items) -> dict:
    """``NAME=VALUE`` pairs; a value reads as true/false, an integer or a number."""
    out = {}
    for item in items:
        name, eq, text = item.partition("=")
        if not eq or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--sampler-option")
        low = text.strip().lower()
        if low in ("true", "false"):
            out[name] = low == "true"
            continue
        try:
            out[name] = int(text)
        except ValueError:
            try:
                out[name] = float(text)
            except ValueError:
                raise click.BadParameter(f"{name}: {text!r} is not a number or true/false",
                                         param_hint="--sampler-option") from None
    return out


@cli.command()
@click.argument("metadata", type=click.Path())
@click.option("-o", "--out", help="output folder, new or empty (default: a new out/MODALITY-NNNN)")
@click.option("--overwrite", is_flag=True, help="replace the earlier result in --out as a whole")
@click.option("--device", help="run on another device than recorded (bits may then differ)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def regenerate(metadata, out, overwrite, device, quiet) -> None:
    """Make a saved result again from its METADATA (metadata.json or its folder) and check
    that every file comes out identical; exit 1 when one differs."""
    from ..output import OutputFolder, next_run_folder
    from ..reproduce import compare, recorded
    from ..reproduce import regenerate as run

    meta = recorded(metadata)
    target = out if out is not None else next_run_folder("out", meta["request"]["modality"])
    with OutputFolder(target, overwrite) as folder:
        result = run(meta, progress=not quiet, **({"device": device} if device else {}))
        for path in folder.write(result):
            click.echo(str(path))
    files = meta.get("files") or []
    differ = compare(meta["folder"], target, files)
    if not differ:
        click.echo(f"identical: all {len(files)} files match {meta['folder']}")
        return
    why = [name for name, key in (("the checkpoint", "checkpoint_sha256"), ("plugin versions", "plugins"))
           if meta.get(key) != result.metadata.get(key)]
    raise PolydiffError(f"{len(differ)} of {len(files)} files differ from {meta['folder']} "
                        f"({', '.join(differ[:3])}{', ...' if len(differ) > 3 else ''})"
                        + (f"; {' and '.join(why)} changed since" if why else ""))


@cli.command()
def samplers() -> None:
    """List registered samplers."""
    from ..registries import components

    reg = components().samplers
    _table([(n, s.order, "yes" if s.stochastic else "no", reg.origin[n], s.description)
            for n, s in sorted(reg.items())], ("name", "order", "stochastic", "plugin", "description"))


@cli.command()
def schedules() -> None:
    """List registered noise schedules and step spacings."""
    from ..registries import components

    c = components()
    _table([(n, "schedule", c.schedules.origin[n], s.description) for n, s in sorted(c.schedules.items())]
           + [(n, "spacing", c.spacings.origin[n], s.description) for n, s in sorted(c.spacings.items())],
           ("name", "kind", "plugin", "description"))


@cli.command()
def modalities() -> None:
    """List registered modalities with their tasks and default backends."""
    from ..registries import components

    c = components()
    _table([(n, ", ".join(m.task_names), m.default_backend, c.modalities.origin[n])
            for n, m in sorted(c.modalities.items())], ("name", "tasks", "backend", "plugin"))


@cli.command()
@click.argument("modality")
@click.option("--json", "as_json", is_flag=True, help="each task's JSON schema (needs, options)")
def tasks(modality, as_json) -> None:
    """A modality's tasks, the inputs each needs and its options."""
    from ..registries import components
    from .tasks import tasks_text

    mod = components().modalities.get_named(modality)
    if as_json:
        click.echo(json.dumps([t.schema() for t in mod.tasks], indent=2))
    else:
        click.echo(tasks_text(mod))


@cli.command()
@click.argument("modality")
@click.option("--backend", help="backend to train (default: the modality's)")
@click.option("-o", "--out", help="checkpoint folder; a run already there is resumed (default: out/train/BACKEND)")
@click.option("--steps", help="optimizer steps in total, resumed ones included (default: the recipe's)")
@click.option("--batch-size", help="samples per step (default: the recipe's)")
@click.option("--seed", help="seeds initial weights, data, noise and dropout (default: the recipe's)")
@click.option("--checkpoint-minutes", help="also save the state this often (default: 10)")
@click.option("--quiet", is_flag=True)
def train(modality, backend, out, quiet, **overrides) -> None:
    """Train a modality's backend with polydiff's trainer (torchrun works too).

    The same command gives the same checkpoint, bit for bit, on the same machine and thread
    count; Ctrl-C or SIGTERM saves the state, and running the command again resumes it.
    """
    from ..errors import InvalidInputError
    from ..registries import components
    from ..training import TrainConfig, check_out_folder

    c = components()
    mod = c.modalities.get_named(modality)
    spec = c.backends.get_named(backend or mod.default_backend)
    if spec.modality != mod.name:
        raise InvalidInputError(f"backend {spec.name!r} is for {spec.modality!r}, not {mod.name!r}")
    if getattr(spec, "train", None) is None:
        raise InvalidInputError(f"backend {spec.name!r} has no training recipe")
    # never the installed package's weights folder unless --out names it
    out = f"out/train/{spec.name}" if out is None else out
    given = {k: v for k, v in overrides.items() if v is not None}
    # every value checked (as text: "1e30" is one line, not click's usage screen) before the
    # recipe builds a model, loads an encoder or writes a file
    config = TrainConfig.build(**given, backend=spec.name, out=out)
    check_out_folder(out)  # the raw text: Path("") would be "."
    overrides = {k: getattr(config, k) for k in given}
    path = spec.train(out=out, progress=not quiet, backend=spec.name, **overrides)
    click.echo(str(path))


@cli.command()
@click.option("-o", "--out", default="out/demo", show_default=True)
def demo(out) -> None:
    """Every sampler on a 2-D Gaussian mixture, then each installed modality's gallery."""
    from .demo import run_demo

    for path in run_demo(out):
        click.echo(str(path))


@cli.command()
@click.argument("modality")
@click.argument("prompt", required=False)
@click.option("-o", "--out", default="out", show_default=True, help="output folder")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--steps", type=int, help="sampler steps (default: the generate task's)")
@click.option("--device", default="cpu", show_default=True)
def explain(modality, prompt, out, seed, steps, device) -> None:
    """One figure of diffusion on MODALITY with its own model: forward, reverse, x0_hat, the
    schedule's log-SNR and a masked edit (PROMPT: default the generate task's example)."""
    from ..explaining import explain as draw

    click.echo(str(draw(modality, out, prompt=prompt, seed=seed, steps=steps, device=device)))


@cli.command(name="eval")
@click.argument("modality")
@click.option("-o", "--out", default=None, help="folder for the report and samples (default out/eval/MODALITY)")
@click.option("--quick", is_flag=True, help="a small run (for smoke tests)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--backend", default=None, help="evaluate this backend of the modality (default: its default)")
def evaluate(modality, out, quick, as_json, backend) -> None:
    """Run a modality's evaluator, print its report and save it (report.json, report.md)."""
    from ..evaluation import evaluate as run

    report = run(modality, out, quick, backend=backend)
    click.echo(json.dumps(report, indent=2) if as_json else report.get("markdown", json.dumps(report, indent=2)))


cli.add_command(tune_steps)


def _add_plugin_commands():
    from .models import models
    from .plugins import plugins
    from .serve import serve

    cli.add_command(models)
    cli.add_command(plugins)
    cli.add_command(serve)
    from ..plugins import disable, load_plugins, ordered_impls

    load_plugins()
    for impl in ordered_impls("register_commands"):  # one at a time: a broken one is disabled alone
        before = dict(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:  # guarded: a plugin's SystemExit arrives as a PluginFault
            cli.commands.clear()
            cli.commands.update(before)  # none of its commands stay half-added
            disable(impl.plugin_name, exc)


def main(argv=None) -> Any:
    try:
        _add_plugin_commands()
    except PolydiffError as exc:  # e.g. a broken plugin under POLYDIFF_STRICT_PLUGINS=1
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    return cli.main(args=argv, prog_name="polydiff")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
