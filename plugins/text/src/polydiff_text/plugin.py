"""Registers the text modality, its masked-diffusion backend and the text condition encoders
(the hook implementations only). Any modality asks for an encoder by name
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


@polydiff.hookimpl
def register_modalities(register) -> None:
    from . import demo, evaluate, io, tasks

    register(polydiff.Modality(
        name="text", description="word-level text by masked diffusion: reviews and news paragraphs",
        tasks=tasks.TASKS, write=io.write, read=io.read, formats=("txt", "json"), tolerance=0.0,
        default_backend="words-transformer", max_elements=4096 * 48,
        evaluate=evaluate.run, demo=demo.run))


@polydiff.hookimpl
def register_backends(register) -> None:
    from . import backend

    register(polydiff.Backend(
        backend.NAME, "text", backend.load, prediction="logits", devices=("cpu", "cuda"),
        checkpoint=str(backend.WEIGHTS_DIR / "model.safetensors"),
        description="masked-diffusion transformer (2.0M parameters) over a 372-token vocabulary",
        train=backend.train))
