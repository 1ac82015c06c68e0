"""A modality's tasks and their options as text, from each task's JSON schema: what
``polydiff tasks MODALITY`` and ``polydiff generate MODALITY --help`` show."""
from __future__ import annotations


def describe_option(name: str, spec: dict, required: bool) -> str:
    """``--noise-level NUMBER  noise std ... (default: none)`` for one option of a schema."""
    kinds = [s.get("type") for s in spec.get("anyOf", [spec]) if s.get("type") not in (None, "null")]
    kind = "/".join(k.upper() for k in kinds) or "VALUE"
    value = spec.get("default")
    if required:
        default = " (required)"
    elif value is None:
        default = ""   # the description says what happens without it
    else:
        default = f" (default: {str(value).lower() if isinstance(value, bool) else value})"
    return f"--{name.replace('_', '-')} {kind}: {spec.get('description', '')}{default}"


def tasks_text(modality) -> str:
    """Every task of ``modality``: its description, the inputs it needs and its options."""
    lines = []
    for task in modality.tasks:
        schema = task.schema()
        needs = "".join(f" --{n}" for n in schema["needs"])
        lines.append(f"{task.name}{needs}: {task.description}")
        props = schema["options"].get("properties", {})
        required = set(schema["options"].get("required", ()))
        lines += [f"    {describe_option(name, spec, name in required)}" for name, spec in props.items()]
    return "\n".join(lines)
