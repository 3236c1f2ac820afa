"""tests/README.md names every module of every part, and only test files that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "tests" / "README.md"
NOT_PARTS = {"tests", "bench", "docs", "scripts", "broker_config"}


def modules() -> set[str]:
    """Every non-empty ``.py`` file of every package at the top of the repository."""
    found = set()
    for pkg in ROOT.iterdir():
        if pkg.is_dir() and (pkg / "__init__.py").exists() and pkg.name not in NOT_PARTS:
            for f in pkg.rglob("*.py"):
                if f.stat().st_size and "templates" not in f.parts:
                    found.add(str(f.relative_to(ROOT)))
    return found


def test_every_module_has_a_row():
    rows = set(re.findall(r"^\| `([^`]+\.py)` \|", README.read_text("utf-8"), re.M))
    assert modules() - rows == set(), "add these modules to tests/README.md"
    assert rows - modules() == set(), "tests/README.md names modules that do not exist"


def test_every_test_file_named_exists():
    named = {n for n in re.findall(r"`(tests/[^`]+\.py)`", README.read_text("utf-8"))
             if "<" not in n}
    assert named and {n for n in named if not (ROOT / n).exists()} == set()
