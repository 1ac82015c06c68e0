"""``polydiff generate MODALITY --prompts FILE``: one request per line of a file, one output
folder per line and a manifest; resumable, and sharded over ranks under ``torchrun``.

Why it is shaped like this (docs/batch.md has the user's side):
- Every line is validated before anything is generated or written, so a typo on line 9 000
  does not surface after hours of work.
- A line's seed depends only on ``--seed`` and the line's index, and each line is sampled on its
  own, so its output is the same whichever rank, process count or resume produced it.
- A line's folder appears in one ``os.rename`` of a finished temporary folder, whose last file
  is the marker ``.done`` (the request it was made from): a folder without a matching marker is
  not done and is made again; one that has it is skipped.
- Ranks join a ``torch.distributed`` (gloo) group before any work, so a broken setup fails at once,
  and meet once, at the end, in an ``all_gather_object``: rank 0 gets every line's record and
  writes the manifest; no shared file system is needed for it, and no polling.
"""
from __future__ import annotations

import difflib
import json
import os
import shutil
from pathlib import Path

import click

from ..errors import InvalidInputError, PolydiffError, one_line

SEED_STRIDE = 4096  # the largest n: line i's samples use seeds SEED + 4096*i + j, j < n, never another line's
MARKER = ".done"
GROUP_TIMEOUT_HOURS = 24 * 7  # how long a finished rank waits for the slowest one


def run_batch(modality: str, prompts: str, out: str, quiet: bool, fields: dict, options: dict) -> Path | None:
    """Generate every line of ``prompts`` not done yet; return the manifest's path (on rank 0,
    None on the others) or raise one ``PolydiffError`` line if some line failed."""
    rank, world, local_rank = _ranks()
    fields = dict(fields)
    base_seed = fields.pop("seed", None) or 0
    lines = read_requests(Path(prompts), dict(fields, modality=modality), options, base_seed)
    check_plans(lines, Path(prompts).name)
    _pick_cuda(lines, local_rank)
    out = _batch_folder(Path(out))
    width = max(5, len(str(len(lines) - 1)))
    mine = [line for line in lines if line["index"] % world == rank]
    group = _join_group() if world > 1 else None  # before the work, so a broken setup fails early
    try:
        records = _run_lines(mine, out, width, quiet=quiet or rank != 0, rank=rank, world=world)
        if group is not None:
            records = _gather(records)
    finally:
        if group is not None:
            group.destroy_process_group()
    records.sort(key=lambda r: r["index"])
    manifest = out / "manifest.jsonl"
    if rank == 0:
        _write_atomically(manifest, "".join(json.dumps(r) + "\n" for r in records))
    failed = [r for r in records if r["status"] != "done"]
    if failed:
        if rank != 0:
            raise click.exceptions.Exit(1)  # rank 0 says why, once
        first = failed[0]
        raise PolydiffError(f"{len(failed)} of {len(records)} lines failed (first: line {first['line']}: "
                            f"{first['error']}); see {manifest}")
    return manifest if rank == 0 else None


def _ranks() -> tuple[int, int, int]:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them (0, 1, 0 when run alone)."""
    values = []
    for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
        text = os.environ.get(name, "").strip() or str(default)
        try:
            values.append(int(text))
        except ValueError:
            raise InvalidInputError(f"{name}: must be an integer, got {text!r}") from None
    rank, world, local = values
    if world < 1 or not 0 <= rank < world:
        raise InvalidInputError(f"RANK={rank}, WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE")
    return rank, world, local


# -- reading and validating the file ------------------------------------------------------------

def read_requests(path: Path, fields: dict, options: dict, base_seed: int) -> list[dict]:
    """Every request of the file, validated: ``{index, line, request (GenerateRequest), record}``.

    Plain text holds one prompt per line; JSONL (a ``.jsonl`` name, or a first request line that
    starts with ``{``) one request object per line, whose fields override the command line's.
    Empty lines and lines starting with ``#`` are skipped. The first bad line raises one
    ``InvalidInputError`` naming it (and how many more are bad)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInputError(f"prompts: no such file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"prompts: cannot read {str(path)!r}: {exc}") from None
    numbered = [(no, raw.strip()) for no, raw in enumerate(text.splitlines(), 1)]
    numbered = [(no, s) for no, s in numbered if s and not s.startswith("#")]
    if not numbered:
        raise InvalidInputError(f"prompts: {str(path)!r} holds no prompts")
    jsonl = path.name.endswith(".jsonl") or numbered[0][1].startswith("{")
    lines, errors = [], []
    for index, (no, content) in enumerate(numbered):
        try:
            given = _parse_json_line(content) if jsonl else {"prompt": content}
            lines.append(_build(index, no, given, fields, options, base_seed))
        except InvalidInputError as exc:
            errors.append(f"{path.name} line {no}: {exc}")
    _raise_first(errors)
    return lines


def check_plans(lines: list[dict], name: str) -> None:
    """Each line's task plan and memory budget, as ``generate`` would check them (a prompt the
    encoder refuses, an unreadable input), so those mistakes too stop the run before it starts.
    It costs one condition encoding per line, which generation then takes from the cache."""
    from pydantic import ValidationError

    from ..builtin.generation import check_budget
    from ..generation import Context
    from ..request import describe

    errors = []
    for line in lines:
        try:
            context = Context(line["request"])
            check_budget(line["request"].n, context.task.plan(line["request"], context), context.modality)
        except (PolydiffError, ValidationError) as exc:
            message = describe(exc) if isinstance(exc, ValidationError) else str(exc)
            errors.append(f"{name} line {line['line']}: {' '.join(message.split())}")
    _raise_first(errors)


def _raise_first(errors: list[str]) -> None:
    if errors:
        more = f" (and {len(errors) - 1} more bad lines)" if len(errors) > 1 else ""
        raise InvalidInputError(errors[0] + more + "; nothing was generated")


def _parse_json_line(content: str) -> dict:
    from ..request import GenerateRequest

    try:
        given = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(given, dict):
        raise InvalidInputError(f"expected a JSON object (a request), got {type(given).__name__}")
    known = set(GenerateRequest.model_fields)
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "; task options go in \"options\""
            raise InvalidInputError(f"{key}: unknown field{hint}")
    if given.get("options") is not None and not isinstance(given["options"], dict):
        raise InvalidInputError("options: must be a JSON object")
    return given


def _build(index: int, no: int, given: dict, fields: dict, options: dict, base_seed: int) -> dict:
    from ..request import GenerateRequest
    from ..result import describe_request

    merged = {**fields, **{k: v for k, v in given.items() if k != "options"}}
    merged["options"] = {**options, **(given.get("options") or {})}
    if merged.get("seed") is None:
        merged["seed"] = base_seed + SEED_STRIDE * index
    for name in ("init", "mask"):
        if isinstance(merged.get(name), str) and not Path(merged[name]).is_file():
            raise InvalidInputError(f"{name}: no such file {merged[name]!r}")
    request = GenerateRequest.build(**merged)
    record = json.loads(json.dumps(describe_request(request), default=str))
    return {"index": index, "line": no, "request": request, "record": record}


# -- generating ---------------------------------------------------------------------------------

def _pick_cuda(lines: list[dict], local_rank: int) -> None:
    """Under torchrun, ``cuda`` (and ``auto`` on a CUDA machine) means this rank's own GPU."""
    if "LOCAL_RANK" not in os.environ or not any(line["request"].device in ("auto", "cuda") for line in lines):
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank % torch.cuda.device_count())


def _run_lines(lines: list[dict], out: Path, width: int, *, quiet: bool, rank: int, world: int) -> list[dict]:
    from tqdm import tqdm

    desc = f"rank {rank}/{world} lines" if world > 1 else "lines"
    records = []
    with tqdm(total=len(lines), desc=desc, unit="line", disable=quiet) as bar:
        for line in lines:
            records.append(_run_line(line, out, f"{line['index']:0{width}d}"))
            bar.update()
    return records


def _run_line(line: dict, out: Path, name: str) -> dict:
    """The manifest record of one line: skipped when its folder is complete for this request,
    else generated into a temporary folder that is renamed into place."""
    from ..generation import generate

    record = {"index": line["index"], "line": line["line"], "request": line["record"],
              "status": "done", "error": None, "files": []}
    final, partial, old = out / name, out / f".partial-{name}", out / f".old-{name}"
    done = _done_files(final, line["record"])
    if done is not None:
        return dict(record, files=[f"{name}/{f}" for f in done])
    for stale in (partial, old):
        shutil.rmtree(stale, ignore_errors=True)
    fields = line["request"].model_dump()
    try:
        result = generate(fields.pop("modality"), fields.pop("prompt"), **fields)
        files = sorted(p.relative_to(partial).as_posix() for p in result.save(partial))
    except Exception as exc:  # one line's failure is recorded; the others still run
        shutil.rmtree(partial, ignore_errors=True)
        message = str(exc) if isinstance(exc, PolydiffError) else f"{type(exc).__name__}: {exc}"
        return dict(record, status="failed", error=one_line(message))
    _write_atomically(partial / MARKER, json.dumps({"request": line["record"], "files": files}))
    if final.exists():
        os.rename(final, old)
    os.rename(partial, final)
    shutil.rmtree(old, ignore_errors=True)
    return dict(record, files=[f"{name}/{f}" for f in files])


def _batch_folder(out: Path) -> Path:
    """``out`` created, or an error when it is a file or a folder of something else than a batch."""
    if out.exists() and not out.is_dir():
        raise PolydiffError(f"out: {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        ours = (out / "manifest.jsonl").is_file() or any((p / MARKER).is_file() for p in out.iterdir())
        if not ours:
            raise PolydiffError(f"out: {out} is not empty and holds no polydiff batch; choose a new or "
                                "empty folder (a batch folder is reused to resume)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PolydiffError(f"out: cannot write {out} ({exc.strerror or type(exc).__name__})") from None
    return out


def _done_files(folder: Path, request: dict) -> list[str] | None:
    """The files of a complete folder made from ``request``, else None (to be made again)."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("request") != request:
        return None
    files = marker.get("files")
    if not isinstance(files, list):
        return None
    return files if all((folder / f).is_file() for f in files) else None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _join_group():
    """torch.distributed with gloo (CPU-only, so it works for CUDA and CPU runs alike), set up by
    torchrun's environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE)."""
    from datetime import timedelta

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method="env://", timeout=timedelta(hours=GROUP_TIMEOUT_HOURS))
    return dist


def _gather(records: list[dict]) -> list[dict]:
    """Every rank's records on every rank: the one time the ranks wait for each other."""
    import torch.distributed as dist

    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, records)
    return [r for part in parts for r in part]
