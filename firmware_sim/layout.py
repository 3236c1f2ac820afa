"""The simulator's demo store; the layout format and its loader live in ``contract.layout``."""

from __future__ import annotations

from pathlib import Path

from contract.layout import Layout
from contract.layout import load_layout as _load_layout

DEMO_LAYOUT = Path(__file__).parent / "layouts" / "demo_store.json"


def load_layout(path: str | Path = DEMO_LAYOUT) -> Layout:
    """``contract.layout.load_layout`` with the demo store as the default file."""
    return _load_layout(path)
