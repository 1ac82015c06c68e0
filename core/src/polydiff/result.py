"""A generation's outputs plus everything needed to reproduce them; saved atomically."""
from __future__ import annotations

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

    def save(self, folder, overwrite: bool = False) -> list[Path]:
        """Write the modality's files and ``metadata.json`` into ``folder``, all at once.

        ``folder`` must be new or empty; one holding an earlier result is replaced as a whole
        only with ``overwrite=True`` (see ``polydiff.output``). A failure leaves nothing behind.
        """
        from .output import OutputFolder

        with OutputFolder(folder, overwrite=overwrite) as out:
            return out.write(self)
