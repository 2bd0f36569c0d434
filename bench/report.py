"""Shared output of every benchmark: a printed table and ``bench/results/<name>.json``."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """One line naming the machine a figure was measured on."""
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_results(name: str, figures: Mapping[str, float]) -> Path:
    """Write ``figures`` (a flat name -> number object) to ``bench/results/<name>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    rounded = {name: round(value, 3) if isinstance(value, float) else value for name, value in figures.items()}
    path.write_text(json.dumps(rounded, indent=2, sort_keys=True) + "\n")
    return path


def format_table(rows: Mapping[str, float]) -> str:
    """A two-column text table of figures, numbers aligned."""
    width = max((len(key) for key in rows), default=0)
    lines = [f"{'figure':<{width}}  {'value':>14}", f"{'-' * width}  {'-' * 14}"]
    lines += [f"{key:<{width}}  {_number(value):>14}" for key, value in rows.items()]
    return "\n".join(lines)


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def report(name: str, figures: Mapping[str, float]) -> None:
    """Print the table of one benchmark and record it."""
    path = write_results(name, figures)
    print(f"\n{name} ({machine()})\n{format_table(figures)}\nwritten to {path}")
