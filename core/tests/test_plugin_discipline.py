"""Discipline: every hook polydiff offers is documented in the plugin guide's hook reference
and implemented by at least one test (so some test exercises it through pluggy); every check
and fixture of the conformance kit is documented too."""
from __future__ import annotations

import re
from pathlib import Path

import polydiff.testing
import pytest
from polydiff import hookspecs
from polydiff.plugins import load_plugins

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "plugins.md"
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if getattr(fn, "polydiff_spec", None) is not None)
TEST_FILES = sorted({*REPO.glob("core/tests/*.py"), *REPO.glob("tests/*.py"), *REPO.glob("plugins/*/tests/*.py")}
                    - {Path(__file__).resolve()})


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


REFERENCE = _section(GUIDE.read_text(), "Hook reference")


def test_hookspecs_are_the_hooks_plugins_get():
    assert len(HOOKS) >= 8
    relay = load_plugins().hook
    assert HOOKS == sorted(n for n in vars(relay) if not n.startswith("_"))
    for name in HOOKS:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"hookspec {name} has no docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_in_the_guide_reference(hook):
    heading = re.search(rf"^### `{hook}\(([\w, ]*)\)`$", REFERENCE, re.M)
    assert heading, f"docs/plugins.md: the hook reference has no '### `{hook}(...)`' section"
    args = getattr(hookspecs, hook).__code__.co_varnames[:getattr(hookspecs, hook).__code__.co_argcount]
    assert heading.group(0).strip("#` ").startswith(f"{hook}({', '.join(args)})"), heading.group(0)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_implemented_by_a_test(hook):
    pattern = re.compile(rf"^\s*def {hook}\(", re.M)
    users = [str(p.relative_to(REPO)) for p in TEST_FILES if pattern.search(p.read_text())]
    assert users, f"no test implements the {hook} hook (a `def {hook}(` in a test file)"


def test_every_kit_check_and_fixture_is_documented():
    text = GUIDE.read_text()
    checks = [n for n in polydiff.testing.__all__ if n.startswith("check_")]
    assert len(checks) >= 12
    missing = [n for n in checks if f"`{n}`" not in text and f"{n}(" not in text]
    assert not missing, f"docs/plugins.md does not mention {missing}"
    from polydiff.testing import pytest_plugin

    fixtures = [n for n in vars(pytest_plugin) if n.startswith("polydiff_")]
    assert len(fixtures) >= 5 and not [n for n in fixtures if f"`{n}`" not in text], fixtures


def test_readme_links_the_guide():
    assert "docs/plugins.md" in (REPO / "README.md").read_text()
