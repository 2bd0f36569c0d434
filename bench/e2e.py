"""The whole network with envelope crypto on and off, side by side, and how the auditor's replay grows.

    python -m bench.e2e [--parts crypto,replay] [--rate 20] [--seconds 10] [--warmup 2] [--sustained 200]
                        [--threads 4] [--order warm,on,off,off,on] [--replay-sizes 10000,100000,1000000]

Part ``crypto``: one benchmark network (``init_network`` with a fresh ``bench-nocrypto-<hex>`` id, made
here) on one Kafka (KAFKA_BOOTSTRAP_SERVERS or a local broker), run several times as a
:class:`deploy.local.network.LocalNetwork` (every service, edge and nameko worker as real processes, mTLS
gRPC), each run with fresh databases (``--database``: by default a throwaway PostgreSQL with fsync off per
run, as bench.referral; SQLite, the local default, answered a few SubmitReferral calls INTERNAL with
"database is locked"-type OperationalErrors when the host was loaded), in the order ``--order``: a warm-up run
(crypto on, figures dropped: the first run on a fresh broker is much slower, its JVM still compiling),
then on, off, off, on, so that drift over time falls equally on both modes. Crypto ON is what every real
network runs; OFF is ``REFERRALNET_BENCH_NULL_CRYPTO`` set to that network's id for its processes, which
:mod:`services.core.envelope.benchmark` honours only for such a network: sections are not encrypted,
nothing is signed or verified by Ed25519 (SHA-256 digests stay). Everything else, mTLS included, is the
same. After each run the services' events topics are read raw to prove it: every new envelope of an "on"
run is format version 1, every one of an "off" run the null version (the bench fails otherwise).
In each run, as bench.referral (its submitter and inbox pollers): pol-mdd-01 submits adult referrals with
a shelter need in Madre de Dios; one poller lists alb-mdd-01's offered handoffs every 10 ms. Each mode's
figures pool its runs (all latencies; the mean of the throughputs).

- latency: after a warm-up, open loop at ``--rate`` per second for ``--seconds``; per referral, from its
  scheduled submit to the poll in which its offer first shows in the shelter's inbox:
  ``e2e_latency_p50_ms`` / ``e2e_latency_p99_ms`` (crypto on) and ``..._nocrypto`` (off);
- throughput: ``--threads`` clients submit ``--sustained`` referrals back to back; referrals per second
  from the first call to the last offer visible: ``e2e_referrals_per_s`` (on), ``e2e_referrals_per_s_nocrypto``
  (off), ``crypto_on_off_ratio`` = on / off (target >= 0.85).

Part ``replay``: :mod:`bench.replay_cost` (``replay_s_<size>``, ``replay_peak_mb_<size>``).

``e2e_host_loadavg`` and ``replay_host_loadavg`` are the host's 1-minute load average (mean of the values at
the start and end of the part): on 2 cores, anything well above 2 means other work shared the machine.

Writes bench/results/e2e.json (a run of one part keeps the other part's figures from the previous run) and
the plots bench/results/e2e_latency.png, e2e_throughput.png and replay_cost.png (:mod:`bench.plots`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import plots
from bench.referral import (
    SHELTERS,
    InboxPollers,
    Submitter,
    _database,
    _ids,
    _visible,
    closed_loop,
    offered_load,
    percentile,
)
from bench.replay_cost import SIZES, size_label
from bench.report import RESULTS_DIR, report
from deploy.local.network import NETWORK_SERVICES, LocalNetwork
from deploy.local.stack import running_kafka
from services.audit.application.records import SourceRecord
from services.audit.replay.log_reader import LogReader
from services.core.envelope.benchmark import ENVIRONMENT_VARIABLE, NULL_FORMAT_VERSION, bench_network_id
from services.core.generated.referralnet.envelope.v1 import envelope_pb2
from services.core.identity.network import init_network
from services.core.messaging.topics import events_topic

PARTS = ("crypto", "replay")
MODES = ("on", "off")
WARM = "warm"  # a run with crypto on whose figures are dropped: the broker's JVM and the page cache warm up
TARGET_RATIO = 0.85


@dataclass(frozen=True)
class Plan:
    """The crypto part's load: offered rate and length (after a warm-up), then the closed-loop burst."""

    rate: float = 20.0
    seconds: float = 10.0
    warmup_s: float = 2.0
    sustained: int = 200
    threads: int = 4
    order: tuple[str, ...] = (WARM, "on", "off", "off", "on")
    database: str = "postgres"


@dataclass(frozen=True)
class ModeResult:
    """One run of the network: every measured latency (ms, sorted) and the throughput."""

    latencies_ms: list[float]
    referrals_per_s: float

    @classmethod
    def pool(cls, runs: list[ModeResult]) -> ModeResult:
        """Several runs of one mode as one: every latency, and the mean throughput."""
        return cls(sorted(value for run in runs for value in run.latencies_ms),
                   statistics.fmean(run.referrals_per_s for run in runs))


def measure(network: LocalNetwork, plan: Plan) -> ModeResult:
    """The latency phase and the throughput phase on a running network (as bench.referral, one region)."""
    region, shelter = SHELTERS[0]
    pollers = InboxPollers(network, [shelter])
    submitter = Submitter(network, [region])
    pollers.start()
    try:
        _visible(pollers, _ids(offered_load(submitter, plan.rate, plan.warmup_s)), "warm-up")
        measured = offered_load(submitter, plan.rate, plan.seconds)
        _visible(pollers, _ids(measured), "latency phase")
        latencies = sorted((pollers.seen[s.referral_id] - s.due) * 1000 for s in measured)
        burst, started = closed_loop(submitter, plan.sustained, plan.threads)
        burst_ids = _ids(burst)
        _visible(pollers, burst_ids, "throughput phase")
        last_visible = max(pollers.seen[referral_id] for referral_id in burst_ids)
    finally:
        pollers.stop()
    return ModeResult(latencies, plan.sustained / (last_visible - started))


def run_mode(plan: Plan, bootstrap: str, folder: Path, network: tuple[Path, str], mode: str) -> ModeResult:
    """One LocalNetwork (fresh SQLite databases) with crypto ``mode`` ("on" or "off"), measured, stopped.

    ``network`` is the benchmark network's folder and id.
    """
    network_dir, network_id = network
    if mode == "off":
        os.environ[ENVIRONMENT_VARIABLE] = network_id  # inherited by every process the network starts
    else:
        os.environ.pop(ENVIRONMENT_VARIABLE, None)
    try:
        started = time.monotonic()
        with _database(folder, plan.database) as postgres_url, \
                LocalNetwork(folder / f"crypto-{mode}", bootstrap, postgres_url=postgres_url,
                             network_dir=network_dir) as running:
            try:
                result = measure(running, plan)
            except RuntimeError:
                kept = Path(tempfile.mkdtemp(prefix=f"bench-e2e-logs-{mode}-"))
                shutil.copytree(running.logs_dir, kept, dirs_exist_ok=True)
                print(f"crypto {mode}: failed; the processes' logs are kept in {kept}", flush=True)
                raise
        print(f"crypto {mode}: measured in {time.monotonic() - started:.0f}s, "
              f"{result.referrals_per_s:.1f} referrals/s, p50 {statistics.median(result.latencies_ms):.0f} ms",
              flush=True)
        return result
    finally:
        os.environ.pop(ENVIRONMENT_VARIABLE, None)


def envelope_versions(bootstrap: str) -> dict[int, int]:
    """How many envelopes of each format version the services' events topics hold (1, or the null one)."""
    records: list[SourceRecord] = []
    with LogReader(bootstrap) as reader:
        topics = [events_topic(service) for service in NETWORK_SERVICES]
        reader.read(reader.bounds([topic for topic in topics if topic in reader.existing_topics()]), records.extend)
    counts: dict[int, int] = {}
    for record in records:
        envelope = envelope_pb2.Envelope()
        envelope.ParseFromString(record.value or b"")
        counts[envelope.format_version] = counts.get(envelope.format_version, 0) + 1
    return counts


def check_mode(mode: str, before: dict[int, int], after: dict[int, int]) -> None:
    """Proof from the topics that a run sealed as its mode says: every event for real (on), or none (off)."""
    new = {version: count - before.get(version, 0) for version, count in after.items()}
    new = {version: count for version, count in new.items() if count}
    print(f"crypto {mode} run: envelopes by format version {new} "
          f"(1 = encrypted and signed, {NULL_FORMAT_VERSION} = the benchmark's null crypto)", flush=True)
    wanted, unwanted = (1, NULL_FORMAT_VERSION) if mode == "on" else (NULL_FORMAT_VERSION, 1)
    if unwanted in new or wanted not in new:
        raise RuntimeError(f"the crypto-{mode} run did not seal as it should (flag not honoured everywhere?): {new}")


def crypto_figures(results: dict[str, ModeResult], plan: Plan) -> dict[str, float]:
    """The figures of both runs; crypto on unsuffixed, off suffixed ``_nocrypto``."""
    figures: dict[str, float] = {}
    for mode, result in results.items():
        suffix = "" if mode == "on" else "_nocrypto"
        figures |= {f"e2e_latency_p50_ms{suffix}": round(statistics.median(result.latencies_ms), 1),
                    f"e2e_latency_p99_ms{suffix}": round(percentile(result.latencies_ms, 0.99), 1),
                    f"e2e_latency_max_ms{suffix}": round(result.latencies_ms[-1], 1),
                    f"e2e_referrals_per_s{suffix}": round(result.referrals_per_s, 1)}
    figures["crypto_on_off_ratio"] = round(results["on"].referrals_per_s / results["off"].referrals_per_s, 3)
    figures |= {"e2e_offered_rate_per_s": plan.rate, "e2e_measured_seconds": plan.seconds,
                "e2e_sustained_count": plan.sustained, "e2e_client_threads": plan.threads,
                "e2e_postgres": int(plan.database == "postgres")}
    return figures


def run(plan: Plan, parts: tuple[str, ...], sizes: tuple[int, ...]) -> dict[str, float]:
    """Every figure of the parts asked for; the plots of what was measured."""
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp, running_kafka(Path(tmp) / "kafka") as bootstrap:
        folder = Path(tmp)
        network_id = bench_network_id()
        network_dir = folder / "network"
        init_network(network_dir, network_id=network_id)
        print(f"benchmark network {network_id} in {network_dir}", flush=True)
        if "crypto" in parts:
            load = [os.getloadavg()[0]]
            results: dict[str, list[ModeResult]] = {mode: [] for mode in MODES}
            versions = envelope_versions(bootstrap)
            for index, mode in enumerate(plan.order):
                result = run_mode(plan, bootstrap, folder / f"run-{index}", (network_dir, network_id),
                                  "on" if mode == WARM else mode)
                after = envelope_versions(bootstrap)
                check_mode("on" if mode == WARM else mode, versions, after)
                versions = after
                if mode != WARM:
                    results[mode].append(result)
            pooled = {mode: ModeResult.pool(runs) for mode, runs in results.items()}
            figures["e2e_host_loadavg"] = round(statistics.fmean([*load, os.getloadavg()[0]]), 2)
            figures |= crypto_figures(pooled, plan)
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            plots.latency_distribution({mode: r.latencies_ms for mode, r in pooled.items()},
                                       RESULTS_DIR / "e2e_latency.png", rate=plan.rate)
            plots.throughput_on_off({mode: r.referrals_per_s for mode, r in pooled.items()},
                                    RESULTS_DIR / "e2e_throughput.png")
        if "replay" in parts:
            from bench import replay_cost  # noqa: PLC0415

            load = [os.getloadavg()[0]]
            figures |= replay_cost.run(folder / "replay", network_dir, bootstrap, sizes)
            figures["replay_host_loadavg"] = round(statistics.fmean([*load, os.getloadavg()[0]]), 2)
    return figures


def _previous(parts: tuple[str, ...], sizes: tuple[int, ...]) -> dict[str, float]:
    """The last e2e.json's figures that this run does not measure (a one-part or fewer-sizes run keeps them)."""
    path = RESULTS_DIR / "e2e.json"
    previous: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}
    replaced = {f"replay_{kind}_{size_label(size)}" for kind in ("s", "peak_mb") for size in sizes}
    replaced.add("replay_host_loadavg")
    kept = {}
    for name, value in previous.items():
        if "crypto" in parts and name.startswith(("e2e_", "crypto_")):
            continue
        if "replay" in parts and name in replaced:
            continue
        kept[name] = value
    return kept


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help="crypto and/or replay")
    parser.add_argument("--rate", type=float, default=Plan.rate, help="offered referrals per second (latency)")
    parser.add_argument("--seconds", type=float, default=Plan.seconds, help="length of the measured latency phase")
    parser.add_argument("--warmup", type=float, default=Plan.warmup_s, help="seconds at the same rate before")
    parser.add_argument("--sustained", type=int, default=Plan.sustained, help="referrals in the throughput phase")
    parser.add_argument("--threads", type=int, default=Plan.threads, help="client threads in the throughput phase")
    parser.add_argument("--order", default=",".join(Plan.order),
                        help="the runs, in order (warm/on/off); each mode's figures pool its runs, warm is dropped")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default=Plan.database,
                        help="the services' databases in the crypto part (a throwaway PostgreSQL per run, or SQLite)")
    parser.add_argument("--replay-sizes", default=",".join(str(size) for size in SIZES),
                        help="log sizes the replay is measured over")
    args = parser.parse_args()
    parts = tuple(part.strip() for part in args.parts.split(",") if part.strip())
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--parts takes {' and/or '.join(PARTS)}")
    sizes = tuple(int(size) for size in args.replay_sizes.split(",") if size.strip())
    order = tuple(mode.strip() for mode in args.order.split(",") if mode.strip())
    if set(order) - {WARM} != set(MODES) or set(order) - {WARM, *MODES}:
        parser.error("--order runs each of on and off at least once")
    plan = Plan(rate=args.rate, seconds=args.seconds, warmup_s=args.warmup, sustained=args.sustained,
                threads=args.threads, order=order, database=args.database)
    figures = run(plan, parts, sizes)
    if "crypto_on_off_ratio" in figures:
        met = figures["crypto_on_off_ratio"] >= TARGET_RATIO
        print(f"target crypto_on_off_ratio >= {TARGET_RATIO}: {'met' if met else 'NOT met'} "
              f"({figures['crypto_on_off_ratio']:.3f})")
    merged = _previous(parts, sizes) | figures
    report("e2e", merged)
    plots.replay_cost(merged, RESULTS_DIR / "replay_cost.png")


if __name__ == "__main__":
    main()
