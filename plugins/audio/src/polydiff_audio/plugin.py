"""Registers the audio modality and its backend. Uses only polydiff's public API; the text
encoder comes from the registry by name (``minilm``, from polydiff-text)."""
import polydiff

TASKS = {
    "generate": "text to a clip (prompt, --seconds, default 2)",
    "continue": "extend --init to --seconds in total (default: 1 s more), guided by the prompt",
    "edit": "regenerate --start..--end seconds of --init from the prompt, keeping the rest (--attack false: continue the sound around the span)",
    "style": "SDEdit: the notes of --init played as the prompt says (--strength in (0, 1])",
    "denoise": "clean a noisy --init (--strength: how much to regenerate, default 0.4)",
}


@polydiff.hookimpl
def register_modalities(register):
    from . import demo, evaluate, tasks, wav

    register(polydiff.Modality(
        name="audio", description="16 kHz clips of notes, chords and arpeggios on five synthesised instruments",
        tasks=TASKS, plan=tasks.plan, write=wav.write, default_backend="notes-unet",
        formats=("wav", "png"), options=tasks.AudioOptions,
        max_elements=tasks.max_elements(),
        evaluate=evaluate.run, demo=demo.run, examples=tasks.examples, read=wav.read_files))


@polydiff.hookimpl
def register_backends(register):
    from . import backend

    register(polydiff.Backend(
        "notes-unet", "audio", backend.load, prediction="v", devices=("cpu", "cuda"),
        checkpoint=str(backend.WEIGHTS_DIR / "model.safetensors"),
        description="text-conditioned 1-D UNet over log-mel frames, trained on synthesised notes",
        train=backend.train))
