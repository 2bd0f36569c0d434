"""Submit-to-inbox latency at a fixed offered rate, and sustained referrals/s, through the whole network.

    python -m bench.referral [--rate 50] [--seconds 20] [--warmup 3] [--sustained 600] [--threads 4]
                             [--backends postgres,sqlite] [--regions 1]

For each database backend (PostgreSQL first: the figures the issue names; then SQLite, suffixed
``_sqlite``) it starts its own :class:`deploy.local.network.LocalNetwork` (intake and referral, edges and
nameko workers, as real processes; mTLS gRPC) on the local stack: the Kafka named by
KAFKA_BOOTSTRAP_SERVERS or a local broker, and PostgreSQL (DATABASE_URL's server or a throwaway one with
fsync off, as bench.pipeline). pol-mdd-01 submits adult referrals with one shelter need in Madre de Dios
(``--regions 3`` adds Cusco and Lima), so the first offer goes to alb-mdd-01 (and alb-cus-01, alb-lim-01);
one poller thread per shelter lists its offered handoffs every 10 ms, newest first, reading back one second
behind the newest (transactions commit out of offered_at order).

- Latency phase: after a warm-up, referrals are offered open loop at ``--rate`` per second for
  ``--seconds``. Per referral: from its scheduled instant (= the start of its SubmitReferral call unless
  the client fell behind, which then counts too) to the poll answer in which the offer first shows in the
  shelter's ListHandoffs (so up to one poll interval, 10 ms, is polling granularity).
- Throughput phase: ``--threads`` client threads submit ``--sustained`` referrals back to back;
  ``referrals_per_s`` is that count over the time from the first call to the last offer visible.

The pollers are part of the load: each ListHandoffs costs the referral edge about 2 ms of CPU, so one
poller at 10 ms takes about a fifth of a core (hence one region by default). Prints one table and writes
bench/results/referral.json. Target (issue 5): p99 < 250 ms at 50/s.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from bench.report import report
from deploy.local.network import LocalNetwork
from deploy.local.postgres import running_postgres
from deploy.local.process import free_ports
from deploy.local.stack import running_kafka
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.consent.v1 import consent_pb2 as consent
from services.core.generated.referralnet.intake.v1 import intake_pb2, intake_pb2_grpc
from services.core.generated.referralnet.referral.v1 import referral_pb2, referral_pb2_grpc

REFERRER = "pol-mdd-01"
SHELTERS = ((vocab.REGION_MADRE_DE_DIOS, "alb-mdd-01"), (vocab.REGION_CUSCO, "alb-cus-01"),
            (vocab.REGION_LIMA, "alb-lim-01"))
BACKENDS = ("postgres", "sqlite")
POLL_INTERVAL_S = 0.010
POLL_PAGE = 50
# Offers are listed newest first by offered_at, but transactions commit out of that order: an offer can
# become visible after newer ones. Each poll therefore reads back at least this far behind the newest.
POLL_WINDOW_US = 1_000_000
RPC_TIMEOUT_S = 30.0
VISIBLE_WAIT_S = 180.0
CLIENT_THREADS = 64
CASE_FILE = intake_pb2.CaseFile(
    given_names="Persona Sintética", family_names="Banco de Pruebas", date_of_birth="1995-05-05", document_type="DNI",
    document_number="SINT-9000", nationality="PE", languages=["es"],
    narrative="Relato sintético del banco de pruebas: " + "x" * 400, safe_contact="Vía la unidad policial.")


@dataclass(frozen=True)
class Plan:
    """What to run: the offered rate and how long (after a warm-up), then the throughput phase."""

    rate: float = 50.0
    seconds: float = 20.0
    warmup_s: float = 3.0
    sustained: int = 600
    threads: int = 4
    regions: int = 1


@dataclass
class Submission:
    """One referral: when it was due, when its SubmitReferral call ended, its id (empty if the call failed)."""

    due: float
    answered: float = 0.0
    referral_id: str = ""
    error: str = ""


@dataclass
class InboxPollers:
    """One thread per shelter listing its offered handoffs every 10 ms; records when each referral shows."""

    network: LocalNetwork
    providers: list[str]
    seen: dict[str, float] = field(default_factory=dict)
    polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """One polling thread per provider."""
        for org_id in self.providers:
            stub = referral_pb2_grpc.ReferralServiceStub(self.network.channel(org_id, "referral"))
            thread = threading.Thread(target=self._poll, args=(stub,), name=f"inbox-{org_id}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop and join the polling threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _poll(self, stub: referral_pb2_grpc.ReferralServiceStub) -> None:
        while not self._stop.is_set():
            began = time.perf_counter()
            with contextlib.suppress(grpc.RpcError):  # a failed poll is simply a poll that saw nothing
                self._poll_once(stub)
            self._stop.wait(max(0.0, POLL_INTERVAL_S - (time.perf_counter() - began)))

    def _poll_once(self, stub: referral_pb2_grpc.ReferralServiceStub, *, everything: bool = False) -> None:
        """The offers of the last POLL_WINDOW_US before the newest (or ``everything``), page after page."""
        token, newest = "", None
        while True:
            request = referral_pb2.ListHandoffsRequest(states=[referral_pb2.HANDOFF_STATE_OFFERED],
                                                       page_size=POLL_PAGE, page_token=token)
            page = stub.ListHandoffs(request, timeout=RPC_TIMEOUT_S)
            now = time.perf_counter()
            with self._lock:
                self.polls += 1
                for handoff in page.handoffs:
                    self.seen.setdefault(handoff.referral_id, now)
            if not page.handoffs or not page.next_page_token:
                return
            stamps = [h.offered_at.ToMicroseconds() for h in page.handoffs]
            newest = max(stamps) if newest is None else newest
            if not everything and min(stamps) < newest - POLL_WINDOW_US:
                return
            token = page.next_page_token

    def scan(self) -> None:
        """Read every provider's whole inbox once (to tell an offer the pollers missed from one never made)."""
        for org_id in self.providers:
            stub = referral_pb2_grpc.ReferralServiceStub(self.network.channel(org_id, "referral"))
            self._poll_once(stub, everything=True)

    def wait_visible(self, referral_ids: list[str], timeout_s: float = VISIBLE_WAIT_S) -> list[str]:
        """Wait until every referral shows in some inbox; the ones still missing at the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                missing = [referral_id for referral_id in referral_ids if referral_id not in self.seen]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.05)


class Submitter:
    """SubmitReferral calls as pol-mdd-01, one adult referral with a shelter need each, regions in turn."""

    def __init__(self, network: LocalNetwork, regions: list[vocab.Region]) -> None:
        self._stub = intake_pb2_grpc.IntakeServiceStub(network.channel(REFERRER, "intake"))
        expires = Timestamp()
        expires.FromSeconds(int(time.time()) + 180 * 86_400)
        self._consent = consent.ConsentGrant(
            recipient=consent.ConsentRecipient(role=vocab.ORG_ROLE_SHELTER),
            purposes=[consent.PURPOSE_SERVICE_DELIVERY],
            categories=[consent.DATA_CATEGORY_ROUTING, consent.DATA_CATEGORY_CASE_FILE],
            given_by=consent.CONSENT_GIVER_SUBJECT, expires_at=expires)
        self._regions = regions
        self._count = 0
        self._lock = threading.Lock()

    def submit(self, due: float | None = None) -> Submission:
        """One referral; ``due`` is when it was scheduled (now when not given)."""
        with self._lock:
            number = self._count
            self._count += 1
        request = intake_pb2.SubmitReferralRequest(
            idempotency_key=f"bench-{time.time_ns()}-{number:08d}", case_file=CASE_FILE,
            needs=[intake_pb2.Need(service_type=vocab.SERVICE_TYPE_SHELTER, urgency=vocab.URGENCY_IMMEDIATE)],
            region=self._regions[number % len(self._regions)], minor=False,
            exploitation_type=vocab.EXPLOITATION_TYPE_FORCED_LABOUR_MINING, consents=[self._consent])
        submission = Submission(due=time.perf_counter() if due is None else due)
        try:
            response = self._stub.SubmitReferral(request, timeout=RPC_TIMEOUT_S)
            submission.referral_id = response.referral_id
        except grpc.RpcError as error:
            submission.error = error.code().name
        submission.answered = time.perf_counter()
        return submission


def offered_load(submitter: Submitter, rate: float, seconds: float) -> list[Submission]:
    """Open loop: one submission due every 1/rate s for ``seconds``, each started at its due instant."""
    count = round(rate * seconds)
    with ThreadPoolExecutor(CLIENT_THREADS, thread_name_prefix="submit") as pool:
        start = time.perf_counter()
        futures = []
        for index in range(count):
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(submitter.submit, due))
        return [future.result() for future in futures]


def closed_loop(submitter: Submitter, count: int, threads: int) -> tuple[list[Submission], float]:
    """``threads`` clients submitting ``count`` referrals back to back; the submissions and when it began."""
    remaining = iter(range(count))
    lock = threading.Lock()
    results: list[Submission] = []

    def client() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            submission = submitter.submit()
            with lock:
                results.append(submission)

    started = time.perf_counter()
    workers = [threading.Thread(target=client, name=f"client-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results, started


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of the sorted values lie (nearest rank, as bench.pipeline)."""
    return sorted_values[max(0, int(len(sorted_values) * fraction) - 1)]


def _ids(submissions: list[Submission]) -> list[str]:
    failed = [s.error for s in submissions if not s.referral_id]
    if failed:
        msg = f"{len(failed)} of {len(submissions)} SubmitReferral calls failed: {sorted(set(failed))}"
        raise RuntimeError(msg)
    return [s.referral_id for s in submissions]


def _visible(pollers: InboxPollers, referral_ids: list[str], phase: str) -> None:
    missing = pollers.wait_visible(referral_ids)
    if missing:
        pollers.scan()
        listed = [referral_id for referral_id in missing if referral_id in pollers.seen]
        msg = (f"{phase}: {len(missing)} of {len(referral_ids)} offers not seen by the pollers within "
               f"{VISIBLE_WAIT_S:.0f}s; a full inbox scan then found {len(listed)} of them: {missing[:5]}")
        raise RuntimeError(msg)


def measure(network: LocalNetwork, plan: Plan) -> dict[str, float]:
    """Both phases on a running network."""
    shelters = SHELTERS[:plan.regions]
    pollers = InboxPollers(network, [org_id for _, org_id in shelters])
    submitter = Submitter(network, [region for region, _ in shelters])
    pollers.start()
    try:
        warm = offered_load(submitter, plan.rate, plan.warmup_s)
        _visible(pollers, _ids(warm), "warm-up")
        polls_before, polls_started = pollers.polls, time.perf_counter()
        measured = offered_load(submitter, plan.rate, plan.seconds)
        _visible(pollers, _ids(measured), "latency phase")
        polls_per_s = (pollers.polls - polls_before) / (time.perf_counter() - polls_started)
        latencies = sorted((pollers.seen[s.referral_id] - s.due) * 1000 for s in measured)
        rpc_ms = sorted((s.answered - s.due) * 1000 for s in measured)

        burst, burst_started = closed_loop(submitter, plan.sustained, plan.threads)
        burst_ids = _ids(burst)
        _visible(pollers, burst_ids, "throughput phase")
        last_visible = max(pollers.seen[referral_id] for referral_id in burst_ids)
    finally:
        pollers.stop()
    return {
        "submit_to_inbox_p50_ms": round(statistics.median(latencies), 1),
        "submit_to_inbox_p99_ms": round(percentile(latencies, 0.99), 1),
        "submit_to_inbox_max_ms": round(latencies[-1], 1),
        "submit_rpc_p50_ms": round(statistics.median(rpc_ms), 1),
        "submit_rpc_p99_ms": round(percentile(rpc_ms, 0.99), 1),
        "referrals_per_s": round(plan.sustained / (last_visible - burst_started), 1),
        "inbox_polls_per_s": round(polls_per_s, 1),
    }


@contextlib.contextmanager
def _database(folder: Path, backend: str) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    with running_postgres(folder / "pg", port=free_ports(1)[0], fsync=False) as url:
        yield url


def run_backend(plan: Plan, bootstrap: str, folder: Path, backend: str, network_dir: Path) -> dict[str, float]:
    """One network on ``backend`` (postgres or sqlite), measured, stopped."""
    with _database(folder, backend) as postgres_url, \
            LocalNetwork(folder / "network", bootstrap, postgres_url=postgres_url, network_dir=network_dir) as network:
        return measure(network, plan)


def run(plan: Plan, backends: tuple[str, ...] = BACKENDS) -> dict[str, float]:
    """Start Kafka (unless named), then each backend's network in turn; the figures, PostgreSQL unsuffixed."""
    figures = per_backend("referral", backends, lambda *where: run_backend(plan, *where))
    figures |= {"referral_offered_rate_per_s": plan.rate, "referral_measured_seconds": plan.seconds,
                "referral_sustained_count": plan.sustained, "referral_regions": plan.regions}
    return figures


def per_backend(name: str, backends: tuple[str, ...],
                run_one: Callable[[str, Path, str, Path], dict[str, float]]) -> dict[str, float]:
    """Start Kafka, then ``run_one(bootstrap, folder, backend, network_dir)`` for each backend in turn.

    The figures of the first backend are unsuffixed, the others' end in ``_<backend>``. One network folder
    serves all: the log the second network's workers join is signed by keys they know.
    """
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp, \
            running_kafka(Path(tmp) / "kafka") as bootstrap:
        for index, backend in enumerate(backends):
            suffix = "" if index == 0 else f"_{backend}"
            started = time.monotonic()
            results = run_one(bootstrap, Path(tmp) / backend, backend, Path(tmp) / "network")
            print(f"{backend}: measured in {time.monotonic() - started:.0f}s", flush=True)
            figures |= {f"{figure}{suffix}": value for figure, value in results.items()}
    return figures


def add_backends_argument(parser: argparse.ArgumentParser) -> None:
    """``--backends postgres,sqlite`` (the default: both, PostgreSQL first)."""
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="databases, the first unsuffixed in the results (postgres, sqlite)")


def parsed_backends(parser: argparse.ArgumentParser, value: str) -> tuple[str, ...]:
    """The backends ``--backends`` names, in order; a usage error for none or an unknown one."""
    backends = tuple(name.strip() for name in value.split(",") if name.strip())
    if not backends or set(backends) - set(BACKENDS):
        parser.error(f"--backends takes {' and/or '.join(BACKENDS)}")
    return backends


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="offered referrals per second (latency phase)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the measured latency phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at the same rate before measuring")
    parser.add_argument("--sustained", type=int, default=600, help="referrals in the throughput phase")
    parser.add_argument("--threads", type=int, default=4, help="client threads in the throughput phase")
    parser.add_argument("--regions", type=int, choices=(1, 2, 3), default=1,
                        help="departments (one shelter, one poller each)")
    add_backends_argument(parser)
    args = parser.parse_args()
    plan = Plan(rate=args.rate, seconds=args.seconds, warmup_s=args.warmup, sustained=args.sustained,
                threads=args.threads, regions=args.regions)
    report("referral", run(plan, parsed_backends(parser, args.backends)))


if __name__ == "__main__":
    main()
