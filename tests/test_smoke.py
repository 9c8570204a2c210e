from __future__ import annotations

from pathlib import Path


def test_new_two_workspaces(make_workspace, store) -> None:
    a = make_workspace("a", deps=("tinyshared",))
    b = make_workspace("b", deps=("tinyshared",))
    fa = a / ".venv/lib/python3.11/site-packages/tinyshared/data.py"
    fb = b / ".venv/lib/python3.11/site-packages/tinyshared/data.py"
    assert fa.stat().st_ino == fb.stat().st_ino
