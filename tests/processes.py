"""Process inspection for tests that must prove no server process outlived them."""

from __future__ import annotations

import os
from pathlib import Path


def processes_mentioning(needle: str) -> list[int]:
    """Live (non-zombie) processes, other than this one, whose command line contains ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry.name))
    return found
