"""Registers the audio modality, its condition encoder and its backend (the hook
implementations only). The encoder builds on the ``minilm`` text encoder of polydiff-text,
asked for by name."""
import polydiff


@polydiff.hookimpl
def register_modalities(register) -> None:
    from . import demo, evaluate, io, tasks

    register(polydiff.Modality(
        name="audio", description="16 kHz clips of notes, chords and arpeggios on five synthesised instruments",
        tasks=tasks.TASKS, write=io.write, read=io.read, formats=("wav", "png"),
        default_backend="notes-unet", max_elements=tasks.MAX_ELEMENTS,
        evaluate=evaluate.run, demo=demo.run, picture=io.picture))


@polydiff.hookimpl
def register_encoders(register) -> None:
    from . import encoders

    register(polydiff.Encoder(
        encoders.NAME, "condition", encoders.AudioPrompt, outputs=encoders.OUTPUTS,
        description="a prompt -> minilm sentence and word tokens + the pitch classes it names",
        examples=lambda: ["a plucked string playing an A minor chord", "organ", ""]))


@polydiff.hookimpl
def register_backends(register) -> None:
    from . import backend, student

    register(polydiff.Backend(
        "notes-unet", "audio", backend.load, prediction="v", devices=("cpu", "cuda"),
        checkpoint=str(backend.WEIGHTS_DIR / "model.safetensors"),
        description="text-conditioned 1-D UNet over log-mel frames, trained on synthesised notes",
        train=backend.train))
    register(polydiff.Backend(
        "notes-turbo", "audio", student.load, prediction="v", devices=("cpu", "cuda"),
        checkpoint=str(student.WEIGHTS_DIR / "model.safetensors"),
        description="notes-unet distilled into 4 steps without guidance (4 calls per clip, not 40)",
        train=student.train))
