"""``python -m bench`` (``make bench``): every benchmark module in its own process, bench.e2e last, then one table.

    python -m bench [--only NAME,...] [--skip NAME,...]

Each ``bench.<name>`` writes bench/results/<name>.json (numbers only); bench.e2e also draws
bench/results/e2e_latency.png and e2e_throughput.png. At the end the replay-cost plot
(bench/results/replay_cost.png) is drawn again from the figures, and every figure of bench/results/ is
printed in one table with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

from bench import plots
from bench.report import RESULTS_DIR, format_table, machine

# Parts of other benchmarks, not benchmarks of their own: audit_proofs (bench.audit), replay_cost (bench.e2e).
NOT_BENCHMARKS = {"report", "plots", "audit_proofs", "replay_cost"}
LAST = "e2e"  # the whole network: after the others, so they do not share the machine with it


def benchmark_modules() -> list[str]:
    """Every ``bench.<name>`` module that is a benchmark: in name order, bench.e2e last."""
    package_dir = Path(__file__).resolve().parent
    names = sorted(info.name for info in pkgutil.iter_modules([str(package_dir)])
                   if not info.name.startswith("_") and info.name not in NOT_BENCHMARKS)
    return [name for name in names if name != LAST] + [name for name in names if name == LAST]


def _names(value: str) -> set[str]:
    return {name.strip() for name in value.split(",") if name.strip()}


def main(argv: list[str] | None = None) -> int:
    """Run them all (or the ones asked for); a failing benchmark fails the run after the others have had their turn."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated benchmark names to run (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names to leave out")
    args = parser.parse_args(argv)
    modules = benchmark_modules()
    only, skip = _names(args.only), _names(args.skip)
    unknown = (only | skip) - set(modules)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; known: {', '.join(modules)}")
    failed, timings = [], {}
    for name in modules:
        if (only and name not in only) or name in skip:
            continue
        print(f"=== bench.{name}", flush=True)
        started = time.monotonic()
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode != 0:
            failed.append(name)
        timings[name] = time.monotonic() - started
    figures: dict[str, float] = {}
    for path in sorted(RESULTS_DIR.glob("*.json")):
        figures.update(json.loads(path.read_text()))
    drawn = plots.replay_cost(figures, RESULTS_DIR / "replay_cost.png")
    pictures = sorted(path.name for path in RESULTS_DIR.glob("*.png"))
    print(f"\nall figures ({machine()})\n{format_table(figures)}")
    print(f"\nplots in {RESULTS_DIR}: {', '.join(pictures) or 'none'}{'' if drawn else ' (no replay figures yet)'}")
    print("wall time: " + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in timings.items()))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
