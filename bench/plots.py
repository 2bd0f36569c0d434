"""The PNG plots of ``make bench`` (matplotlib, no display): latency, throughput crypto on/off, replay cost."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

LABELS = {"on": "envelope crypto on", "off": "envelope crypto off (benchmark flag)"}
_REPLAY = re.compile(r"replay_(s|peak_mb)_(\d+)([km])$")


def latency_distribution(latencies_ms: Mapping[str, Sequence[float]], path: Path, *, rate: float) -> Path:
    """Submit-to-inbox latency of each mode: a histogram and the empirical CDF side by side."""
    figure, (histogram, cdf) = plt.subplots(1, 2, figsize=(11, 4))
    for mode, values in latencies_ms.items():
        ordered = sorted(values)
        histogram.hist(ordered, bins=40, alpha=0.55, label=LABELS.get(mode, mode))
        cdf.plot(ordered, [(index + 1) / len(ordered) for index in range(len(ordered))], label=LABELS.get(mode, mode))
    histogram.set(xlabel="submit to offer in the inbox (ms)", ylabel="referrals",
                  title=f"e2e latency at {rate:g} referrals/s offered")
    cdf.set(xlabel="submit to offer in the inbox (ms)", ylabel="fraction of referrals", title="cumulative")
    cdf.axhline(0.99, color="grey", linewidth=0.6, linestyle=":")
    for axes in (histogram, cdf):
        axes.legend()
        axes.grid(alpha=0.3)
    return _save(figure, path)


def throughput_on_off(referrals_per_s: Mapping[str, float], path: Path) -> Path:
    """Sustained referrals per second with crypto on and off, and their ratio."""
    figure, axes = plt.subplots(figsize=(6, 4))
    modes = list(referrals_per_s)
    bars = axes.bar([LABELS.get(mode, mode) for mode in modes], [referrals_per_s[mode] for mode in modes],
                    color=["tab:blue", "tab:orange"][:len(modes)])
    axes.bar_label(bars, fmt="%.1f")
    title = "whole network, sustained referrals/s"
    if "on" in referrals_per_s and referrals_per_s.get("off"):
        title += f"\non/off = {referrals_per_s['on'] / referrals_per_s['off']:.2f} (target >= 0.85)"
    axes.set(ylabel="referrals/s (submit to offer in the inbox)", title=title)
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def replay_cost(figures: Mapping[str, float], path: Path) -> Path | None:
    """Replay seconds and peak RSS against the log size (log-log), from ``replay_s_<n>k|m`` figures."""
    seconds: dict[int, float] = {}
    peak: dict[int, float] = {}
    for name, value in figures.items():
        match = _REPLAY.match(name)
        if match:
            size = int(match[2]) * (1_000 if match[3] == "k" else 1_000_000)
            (seconds if match[1] == "s" else peak)[size] = value
    if not seconds:
        return None
    figure, (time_axes, memory_axes) = plt.subplots(1, 2, figsize=(11, 4))
    sizes = sorted(seconds)
    time_axes.loglog(sizes, [seconds[size] for size in sizes], marker="o", label="measured")
    first = sizes[0]
    time_axes.loglog(sizes, [seconds[first] * size / first for size in sizes], linestyle="--", color="grey",
                     label="linear from the smallest")
    time_axes.set(xlabel="sealed events in the log", ylabel="replay wall time (s)",
                  title="referralnet audit replay: time")
    memory_sizes = sorted(peak)
    memory_axes.semilogx(memory_sizes, [peak[size] for size in memory_sizes], marker="o", color="tab:red")
    memory_axes.set(xlabel="sealed events in the log", ylabel="peak RSS of the replay process (MiB)",
                    title="referralnet audit replay: memory", ylim=(0, None))
    time_axes.legend()
    for axes in (time_axes, memory_axes):
        axes.grid(alpha=0.3, which="both")
    return _save(figure, path)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
