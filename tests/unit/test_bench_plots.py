"""``make bench``'s plumbing: which modules it runs (bench.e2e last) and the PNG plots it draws."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench import plots
from bench.__main__ import NOT_BENCHMARKS, benchmark_modules
from bench.replay_cost import high_water_kib, size_label

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_benchmark_runs_and_the_whole_network_last() -> None:
    modules = benchmark_modules()
    assert modules[-1] == "e2e"
    assert {"audit", "envelope", "referral", "notify"} <= set(modules)
    assert not NOT_BENCHMARKS & set(modules)


def test_size_labels_name_the_figures() -> None:
    assert [size_label(size) for size in (10_000, 100_000, 1_000_000, 1_500)] == ["10k", "100k", "1m", "1500"]


def test_the_three_plots_are_drawn(tmp_path: Path) -> None:
    latency = plots.latency_distribution({"on": [120.0, 150.0, 300.0], "off": [100.0, 110.0, 250.0]},
                                         tmp_path / "latency.png", rate=20)
    throughput = plots.throughput_on_off({"on": 40.0, "off": 44.0}, tmp_path / "throughput.png")
    replay = plots.replay_cost({"replay_s_10k": 2.0, "replay_s_100k": 15.0, "replay_peak_mb_10k": 180.0,
                                "replay_peak_mb_100k": 300.0, "e2e_referrals_per_s": 40.0}, tmp_path / "replay.png")
    for path in (latency, throughput, replay):
        assert path is not None
        assert path.read_bytes().startswith(PNG_MAGIC)
    assert plots.replay_cost({"e2e_referrals_per_s": 40.0}, tmp_path / "none.png") is None


def test_a_childs_peak_is_its_own_not_its_parents() -> None:
    ballast = bytearray(256 * 2**20)  # this process: at least 256 MiB resident
    ballast[::4096] = b"\x01" * len(ballast[::4096])
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        peak = high_water_kib(child.pid)
    finally:
        child.communicate(b"")
    assert 0 < peak < 100 * 1024 < high_water_kib(os.getpid())  # a bare interpreter, not the parent's 256 MiB
    assert high_water_kib(child.pid) == 0  # gone
