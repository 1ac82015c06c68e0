"""Text files: one ``{task}-{i:03d}.txt`` per sample (its text; for sentiment the label and its
probability; for summarise the summary) plus ``{task}.json`` with every output in full (text,
the 48 token ids, label, probabilities, summary). ``read`` is ``write``'s inverse: it returns
the outputs from the JSON. Files are written to a temporary name and moved into place."""
from __future__ import annotations

import json
import os
from pathlib import Path

import polydiff


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def as_text(output: dict) -> str:
    """What a sample's .txt holds."""
    if output.get("task") == "sentiment":
        return f"{output['label']} {output['probability']:.3f}\n"
    if output.get("task") == "summarise":
        return output["summary"] + "\n"
    return output["text"] + "\n"


def write(outputs, folder, request) -> list[Path]:
    folder = Path(folder)
    task = getattr(request, "task", None) or (outputs[0].get("task") if outputs else "text")
    paths = []
    for i, output in enumerate(outputs):
        path = folder / f"{task}-{i:03d}.txt"
        _atomic_write(path, as_text(output))
        paths.append(path)
    path = folder / f"{task}.json"
    _atomic_write(path, json.dumps({"outputs": list(outputs)}, indent=1) + "\n")
    return [*paths, path]


def read(files) -> list[dict]:
    """The outputs ``write`` saved (from its JSON; the .txt files are views of it)."""
    found = [Path(f) for f in files if Path(f).suffix == ".json" and Path(f).name != "metadata.json"]
    if len(found) != 1:
        raise polydiff.InvalidInputError(f"expected one text output JSON among the files, found {len(found)}")
    try:
        return list(json.loads(found[0].read_text(encoding="utf-8"))["outputs"])
    except (OSError, ValueError, KeyError) as exc:
        raise polydiff.InvalidInputError(f"{found[0]}: not a text output file ({exc})") from None
