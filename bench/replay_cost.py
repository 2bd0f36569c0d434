"""How the auditor's replay grows with the log: ``referralnet audit replay`` as a child process, per log size.

Part of bench.e2e (``python -m bench.e2e --parts replay [--replay-sizes 10000,100000,1000000]``), which
reports these figures with its own in bench/results/e2e.json:

- ``replay_s_<size>``: wall time of the child process ``referralnet audit replay --no-progress`` (start to
  exit: interpreter start, imports, reading the checkpoint topic and the events topic from offset 0,
  verifying every signature, opening and decoding every routing section, rebuilding the tree and checking
  every checkpoint, the compliance checks, report.json and report.html), over a log of ``<size>`` sealed
  events (10k, 100k, 1m);
- ``replay_peak_mb_<size>``: that child's peak resident set in MiB: the kernel's high-water mark of its
  own address space (``VmHWM`` in ``/proc/<pid>/status``, read every 50 ms until it exits). Not ``ru_maxrss``:
  a child's ``ru_maxrss`` starts from its parent's resident set at the fork and survives the exec, so it
  reported this benchmark's own size (over 1.5 GiB while the million-event log was made), not the replay's.

Each log is made as bench.audit makes its own (not timed): ConsentRecorded events sealed by svc:intake with
a network's real keys over 100 subject streams, produced to a fresh 3-partition topic; then appended by the
audit worker's batch path (``LedgerWriter.ingest``, 500 per batch) into a SQLite ledger that signs a
checkpoint every 1,000 leaves, and those checkpoints published to a fresh checkpoint topic, so the replay
checks real checkpoints over the whole log. A size's figure counts only if the replay exits 0 (clean) with
a tree of exactly ``<size>`` leaves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from bench.audit import (
    CHECKPOINT_EVERY,
    PARTITIONS,
    _Publisher,
    interleaved,
    ledger_appends,
    produce,
    read_back,
    seal_events,
)
from services.core.database import create_engine
from services.core.messaging.topics import ensure_topics

SIZES = (10_000, 100_000, 1_000_000)
BATCH = 500
REPLAY_TIMEOUT_S = 1800.0


def size_label(size: int) -> str:
    """``10k``, ``100k``, ``1m``: the suffix of a size's figures."""
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000}m"
    if size % 1_000 == 0:
        return f"{size // 1_000}k"
    return str(size)


def prepare_log(folder: Path, network_dir: Path, bootstrap: str, size: int) -> tuple[str, str]:
    """A fresh events topic of ``size`` sealed events and a checkpoint topic covering them; (events, checkpoints)."""
    tag = uuid.uuid4().hex[:8]
    topic, checkpoints = f"referralnet.bench-replay-{tag}.events.v1", f"referralnet.bench-replay-{tag}.checkpoints.v1"
    ensure_topics(bootstrap, [topic, checkpoints], partitions=PARTITIONS, replication_factor=1, min_insync_replicas=1)
    started = time.perf_counter()
    sealed = seal_events(network_dir, size)
    produce(bootstrap, topic, sealed)
    del sealed
    batches = interleaved(read_back(bootstrap, topic), BATCH)
    engine = create_engine(f"sqlite+pysqlite:///{folder / f'ledger-{tag}.db'}")
    try:
        _, writer, leaves = ledger_appends(engine, network_dir, topic, batches)
        if leaves != size:
            raise RuntimeError(f"the ledger of the {size:,}-event log has {leaves:,} leaves")
        publisher = _Publisher(bootstrap, checkpoints)
        try:
            writer.publish_pending(publisher)
        finally:
            publisher.close()
    finally:
        engine.dispose()
    print(f"replay log of {size:,} events (checkpoint every {CHECKPOINT_EVERY:,}) made in "
          f"{time.perf_counter() - started:.0f}s", flush=True)
    return topic, checkpoints


def replay_child(bootstrap: str, network_dir: Path, out_dir: Path, topic: str, checkpoints: str,
                 ) -> tuple[float, float, dict[str, object]]:
    """Run ``referralnet audit replay`` as a child; (seconds, peak RSS MiB, report.json)."""
    argv = [sys.executable, "-m", "services.core.cli", "audit", "replay", "--bootstrap", bootstrap,
            "--network", str(network_dir), "--out", str(out_dir), "--topics", topic, "--dead-letter-topics",
            "--checkpoint-topic", checkpoints, "--no-progress"]
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir.parent / f"{out_dir.name}.log"
    started = time.perf_counter()
    peak_kib = 0
    with log_path.open("w") as log:
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = started + REPLAY_TIMEOUT_S
        while True:
            peak_kib = max(peak_kib, high_water_kib(child.pid))
            pid, status, _ = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                child.wait()
                raise RuntimeError(f"the replay took over {REPLAY_TIMEOUT_S:.0f}s")
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    output = log_path.read_text()
    if child.returncode != 0:
        raise RuntimeError(f"the replay exited {child.returncode}:\n{output}")
    print(output.rstrip(), flush=True)
    peak_mib = peak_kib / 1024
    report = json.loads((out_dir / "report.json").read_text())
    return seconds, peak_mib, report


def run(folder: Path, network_dir: Path, bootstrap: str, sizes: Sequence[int] = SIZES) -> dict[str, float]:
    """``replay_s_<size>`` and ``replay_peak_mb_<size>`` for each size (see the module docstring)."""
    figures: dict[str, float] = {}
    folder.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        topic, checkpoints = prepare_log(folder, network_dir, bootstrap, size)
        label = size_label(size)
        seconds, peak_mib, report = replay_child(bootstrap, network_dir, folder / f"report-{label}", topic,
                                                 checkpoints)
        if report.get("tree_size") != size:
            raise RuntimeError(f"the replay of {size:,} events rebuilt a tree of {report.get('tree_size')}")
        print(f"replay of {size:,} events: {seconds:.1f}s, peak RSS {peak_mib:.0f} MiB", flush=True)
        figures[f"replay_s_{label}"] = round(seconds, 2)
        figures[f"replay_peak_mb_{label}"] = round(peak_mib, 1)
    return figures


def high_water_kib(pid: int) -> int:
    """``VmHWM`` of a running process (its own peak resident set since its exec), in KiB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0  # a zombie: its address space is gone
