"""A generation's outputs plus everything needed to reproduce them; saved atomically."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def describe_request(request) -> dict:
    """The request as JSON: arrays become a short description (pass files to keep them)."""
    out = {}
    for key, value in request.model_dump().items():
        if hasattr(value, "shape") and not isinstance(value, (str, bytes)):
            value = f"<array shape={tuple(value.shape)}>"
        out[key] = value
    return out


class Result:
    def __init__(self, modality, outputs, samples, metadata, writer, request):
        self.modality, self.outputs, self.samples = modality, outputs, samples
        self.metadata, self.writer, self.request = metadata, writer, request

    def __len__(self):
        return len(self.outputs)

    def __repr__(self):
        return f"<Result {self.modality} n={len(self)} seed={self.request.seed}>"

    def save(self, folder) -> list[Path]:
        """Write the modality's files and ``metadata.json`` into ``folder``.

        Files are written to a temporary folder first and moved into place only when all of
        them were written, so a failure leaves no partial output behind.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".polydiff-", dir=folder))
        try:
            written = [Path(p) for p in self.writer(self.outputs, staging, self.request)]
            meta = dict(self.metadata, files=[p.name for p in written])
            (staging / "metadata.json").write_text(json.dumps(meta, indent=2, default=str))
            final = []
            for p in [*written, staging / "metadata.json"]:
                target = folder / p.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(p, target)
                final.append(target)
            return final
        finally:
            shutil.rmtree(staging, ignore_errors=True)
