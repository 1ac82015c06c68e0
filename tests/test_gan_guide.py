"""docs/diffusion-vs-gan.md's example runs as written: a 2-step DDGAN trained and sampled."""
from pathlib import Path

import torch
from _markdown import read_blocks

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "diffusion-vs-gan.md"


def test_the_few_step_example_runs(tmp_path, monkeypatch):
    blocks = [b for b in read_blocks(GUIDE.read_text()) if b["lang"] == "python"]
    assert blocks, "the guide has no Python example"
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for block in blocks:
            exec(compile(block["code"], f"docs/diffusion-vs-gan.md:{block['line']}", "exec"), {})
    finally:
        torch.set_num_threads(threads)
