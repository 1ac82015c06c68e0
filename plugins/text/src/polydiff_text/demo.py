"""The text gallery of ``polydiff demo``: prompted generations, an infill, a summary and a
sentiment call, each printed and written under the demo folder with a README.txt."""
from __future__ import annotations

from pathlib import Path

import polydiff

PROMPTS = ["a positive review of a film", "write a negative review of a phone", "something nice about a hotel",
           "a short news paragraph about a bakery"]
INFILL = "the hotel is [MASK] and the staff are [MASK] [MASK] ."
PARAGRAPH = "it was a cold morning in paris . on monday , maria opened a bakery there . many people came to see it ."
REVIEW = "the food is cold and bland and the menu is tiny ."


def run(folder) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files, lines = [], []
    for i, prompt in enumerate(PROMPTS):
        result = polydiff.generate("text", prompt, n=2, seed=i)
        files += result.save(folder / f"generate-{i}", overwrite=True)
        lines += [f"generate {prompt!r}:"] + [f"  {o['text']}" for o in result.outputs]
    edits = [("infill", INFILL, lambda o: o["text"]), ("summarise", PARAGRAPH, lambda o: o["summary"]),
             ("sentiment", REVIEW, lambda o: f"{o['label']} (p = {o['probability']:.3f})")]
    for task, init, show in edits:
        result = polydiff.generate("text", task=task, init=init, seed=0)
        files += result.save(folder / task, overwrite=True)
        lines += [f"{task} {init!r}:", f"  {show(result.outputs[0])}"]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (folder / "README.txt").write_text(
        "generate-K/: two generations for each prompt below (generate-000.txt ...; generate.json has the tokens)\n"
        f"infill/: {INFILL!r} filled (each [MASK] is one word)\n"
        f"summarise/: the summary of {PARAGRAPH!r}\n"
        f"sentiment/: the label of {REVIEW!r} with the denoiser's probability\n\n" + text)
    return [*files, folder / "README.txt"]
