"""From a stored job to a validated ``GenerateRequest``, and the key that says which jobs may
share one sampling run. Inputs are files in the job's own folder; nothing else is ever read."""
from __future__ import annotations

from pathlib import Path

from ..contract import INPUTS

REQUEST_FIELDS = ("modality", "prompt", "task", "n", "seed", "steps", "sampler", "spacing", "guidance",
                  "backend", "model", "options", "sampler_options")
CONTENT_TYPES = {".png": "image/png", ".gif": "image/gif", ".wav": "audio/wav", ".json": "application/json",
                 ".txt": "text/plain; charset=utf-8", ".jpg": "image/jpeg", ".npy": "application/octet-stream",
                 ".mp4": "video/mp4", ".nii": "application/octet-stream", ".gz": "application/gzip",
                 ".md": "text/markdown; charset=utf-8", ".csv": "text/csv", ".svg": "image/svg+xml"}


def request_fields(stored: dict, job_dir: Path) -> dict:
    """``GenerateRequest.build`` arguments of a stored job: its JSON fields, and its inputs as
    paths inside ``job_dir`` (uploads) or the inline values it was given."""
    fields = {k: stored[k] for k in REQUEST_FIELDS if stored.get(k) is not None}
    for name in INPUTS:
        given = stored.get("inputs", {}).get(name)
        if given is None:
            continue
        fields[name] = str(job_dir / given["file"]) if "file" in given else given["value"]
    fields["device"] = stored.get("device", "auto")
    return fields


def batch_key(stored: dict) -> tuple | None:
    """Jobs with equal keys may be sampled in one batch; None: this job runs alone."""
    if stored.get("inputs"):
        return None
    return tuple(repr(stored.get(k)) for k in ("modality", "task", "backend", "steps", "sampler", "spacing",
                                                "guidance", "device", "options"))


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")
