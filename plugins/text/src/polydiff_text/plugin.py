"""Registers the text condition encoders. Any modality asks for one by name
(``context.encoder("minilm")``) and never imports this package."""
import polydiff


@polydiff.hookimpl
def register_encoders(register):
    from .minilm import load

    register(polydiff.Encoder(
        name="minilm", kind="condition", load=load,
        description="all-MiniLM-L6-v2 sentence embedding (384-d, unit norm), cached per prompt",
        examples=lambda: ["a red circle", "a small blue square on the left", ""]))
