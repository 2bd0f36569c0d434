"""``python -m bench``: run every benchmark module, each in its own process, then print one table."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

from bench.report import RESULTS_DIR, format_table, machine

NOT_BENCHMARKS = {"report", "audit_proofs"}  # audit_proofs is a part of bench.audit


def benchmark_modules() -> list[str]:
    """Every ``bench.<name>`` module that is a benchmark, in name order."""
    package_dir = Path(__file__).resolve().parent
    return sorted(info.name for info in pkgutil.iter_modules([str(package_dir)])
                  if not info.name.startswith("_") and info.name not in NOT_BENCHMARKS)


def main() -> int:
    """Run them all; a failing benchmark fails the run after the others have had their turn."""
    failed = []
    for name in benchmark_modules():
        print(f"=== bench.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0:
            failed.append(name)
    figures: dict[str, float] = {}
    for path in sorted(RESULTS_DIR.glob("*.json")):
        figures.update(json.loads(path.read_text()))
    print(f"\nall figures ({machine()})\n{format_table(figures)}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
