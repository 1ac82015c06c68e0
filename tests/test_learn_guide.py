"""docs/learn.md runs as written: its Python blocks, in order, in one session (its asserts are
the page's claims), and every picture it shows exists."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from _markdown import read_blocks

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDE = DOCS / "learn.md"
BLOCKS = read_blocks(GUIDE.read_text())


def test_every_block_is_python_and_every_picture_exists():
    assert len(BLOCKS) >= 8
    assert [b["line"] for b in BLOCKS if b["lang"] != "python"] == []
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", GUIDE.read_text())
    assert len(pictures) >= 3
    assert [p for p in pictures if not (DOCS / p).is_file()] == []


def test_readme_links_the_tutorial():
    assert "docs/learn.md" in (DOCS.parent / "README.md").read_text()


@pytest.mark.timeout(300)
def test_the_tutorial_runs_in_order(tmp_path, monkeypatch, polydiff_single_thread):
    monkeypatch.chdir(tmp_path)
    session: dict = {"__name__": "__learn__"}
    for block in BLOCKS:
        try:
            exec(compile(block["code"], f"docs/learn.md:{block['line']}", "exec"), session)
        except Exception as exc:
            raise AssertionError(f"docs/learn.md block at line {block['line']} failed: {exc!r}") from exc
    assert (tmp_path / "out/learn/explain-image.png").is_file()
