"""Registers the text condition encoders. Any modality asks for one by name
(``context.condition("minilm", prompts)``) and never imports this package."""
import polydiff


@polydiff.hookimpl
def register_encoders(register) -> None:
    from .minilm import OUTPUTS, load

    register(polydiff.Encoder(
        name="minilm", kind="condition", load=load,
        description="all-MiniLM-L6-v2: sentence vector, per-word tokens and mask (384-d, unit norm)",
        outputs=OUTPUTS,
        examples=lambda: ["a red circle", "a small blue square on the left", ""]))
