"""Fenced code blocks of a Markdown guide, for the tests that run every block of one."""
from __future__ import annotations


def read_blocks(text: str) -> list[dict]:
    """Fenced blocks in order: section (## heading), language, attributes, code, preceding prose."""
    blocks, section, prose, lines, i = [], "", [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("```"):
            info = line[3:].split()
            lang, attrs = (info[0] if info else ""), dict(a.split("=", 1) for a in info[1:])
            end = lines.index("```", i + 1)
            blocks.append({"section": section, "lang": lang, "attrs": attrs, "prose": "\n".join(prose),
                           "code": "\n".join(lines[i + 1:end]) + "\n", "line": i + 1})
            prose, i = [], end + 1
            continue
        prose.append(line)
        i += 1
    return blocks
