"""Load, faults and end-state checks of the reliability suite.

:class:`SteadyLoad` is partners using the network as they would while things break: referrers submit
referrals over gRPC (each submission keeps its idempotency key and is retried with it until it is answered
OK, so a call cut by a dead edge is never counted nor lost), providers accept what is offered to them. It is
bounded in count (``per_referrer`` submissions each) and every call and wait has a deadline.

:func:`check_network_consistent` states what must hold once the network has settled, read from the real
stores: the services' own databases (event stores, referrals, notify's delivery log, audit's leaves), the
Kafka topics read raw, the partners' inbox and the auditor's replay.
"""

from __future__ import annotations

import collections
import functools
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa

from deploy.local.inbox import EMAIL, WEBHOOK, PartnerInbox
from deploy.local.network import EVENT_PRODUCERS, LocalNetwork, worker_name
from services.core.cli import main as referralnet_main
from services.core.database import create_engine
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.intake.v1 import intake_pb2, intake_pb2_grpc
from services.core.generated.referralnet.notify.v1 import notify_pb2
from services.core.generated.referralnet.referral.v1 import referral_pb2, referral_pb2_grpc
from services.core.identity.keystore import load_directory
from services.core.messaging.topics import dead_letter_topic, events_topic
from tests.e2e.support import grant, read_topic, referral_request

CALL_TIMEOUT_S = 10.0
SUBMIT_DEADLINE_S = 180.0  # how long one submission may take to be answered OK, retries included
RETRY_PAUSE_S = 0.25
SETTLE_S = 240.0  # how long the network may take to converge once the faults stop


@dataclass(frozen=True)
class Route:
    """Who refers what to whom in the load: a referrer, one need in one department, the provider offered it."""

    referrer: str
    service_type: vocab.ServiceType
    region: vocab.Region
    role: vocab.OrgRole
    provider: str


ROUTES = (
    Route("fis-lim-01", vocab.SERVICE_TYPE_LEGAL_AID, vocab.REGION_LIMA, vocab.ORG_ROLE_LEGAL, "leg-lim-01"),
    Route("pol-mdd-01", vocab.SERVICE_TYPE_SHELTER, vocab.REGION_MADRE_DE_DIOS, vocab.ORG_ROLE_SHELTER, "alb-mdd-01"),
)


@dataclass
class LoadResult:
    """What the partners saw: the submissions answered OK (idempotency key -> referral id), the handoffs
    they accepted, and how many calls failed and were retried."""

    accepted: dict[str, str] = field(default_factory=dict)
    accepted_handoffs: set[str] = field(default_factory=set)
    failed_calls: collections.Counter[str] = field(default_factory=collections.Counter)
    replayed: int = 0
    errors: list[str] = field(default_factory=list)


class SteadyLoad:
    """Referrers submitting and providers accepting, in threads, until the bounded count is reached."""

    def __init__(self, network: LocalNetwork, *, per_referrer: int, pause_s: float, label: str,
                 routes: Sequence[Route] = ROUTES) -> None:
        self.network = network
        self.per_referrer = per_referrer
        self.pause_s = pause_s
        self.label = label
        self.routes = routes
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._submitting_done = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> SteadyLoad:
        """Start one submitting thread per referrer and one accepting thread per provider."""
        for index, route in enumerate(self.routes):
            self._threads.append(threading.Thread(target=self._submit_all, args=(index, route), daemon=True,
                                                  name=f"submit-{route.referrer}"))
        for provider in sorted({route.provider for route in self.routes}):
            self._threads.append(threading.Thread(target=self._accept_offers, args=(provider,), daemon=True,
                                                  name=f"accept-{provider}"))
        for thread in self._threads:
            thread.start()
        return self

    def __enter__(self) -> SteadyLoad:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        """Stop the threads (bounded) however the block ended; a failed block keeps its own error."""
        self._stop.set()
        deadline = time.monotonic() + 30.0
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def submissions_done(self, timeout_s: float) -> bool:
        """Wait until every submitting thread has its answers (bounded)."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            if thread.name.startswith("submit-"):
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads if t.name.startswith("submit-"))

    def stop(self, timeout_s: float = 30.0) -> LoadResult:
        """Stop accepting and join every thread (bounded); the result."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        assert not alive, f"load threads still running after {timeout_s:.0f}s: {alive}"
        return self.result

    # -- the partners ------------------------------------------------------------------------------------

    def _submit_all(self, index: int, route: Route) -> None:
        stub = intake_pb2_grpc.IntakeServiceStub(self.network.channel(route.referrer, "intake"))
        for number in range(self.per_referrer):
            if self._stop.is_set():
                return
            key = f"rel-{self.label}-{index}-{number:04d}-{time.time_ns():x}"
            request = referral_request(needs=[(route.service_type, vocab.URGENCY_PRIORITY)], region=route.region,
                                       consents=[grant(route.role)], case_file_number=9000 + number,
                                       idempotency_key=key)
            answer = self._until_ok(functools.partial(stub.SubmitReferral, request, timeout=CALL_TIMEOUT_S),
                                    f"SubmitReferral {key}")
            if answer is None:
                return
            with self._lock:
                self.result.accepted[key] = answer.referral_id
                self.result.replayed += int(answer.replayed)
            time.sleep(self.pause_s)

    def _until_ok(self, call: Callable[[], intake_pb2.SubmitReferralResponse], what: str,
                  ) -> intake_pb2.SubmitReferralResponse | None:
        """Retry ``call`` (same request, same idempotency key) until it answers OK; None after the deadline."""
        deadline = time.monotonic() + SUBMIT_DEADLINE_S
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                return call()
            except grpc.RpcError as error:
                with self._lock:
                    self.result.failed_calls[error.code().name] += 1
                time.sleep(RETRY_PAUSE_S)
        with self._lock:
            self.result.errors.append(f"{what} was not answered OK within {SUBMIT_DEADLINE_S:.0f}s")
        return None

    def _accept_offers(self, provider: str) -> None:
        stub = referral_pb2_grpc.ReferralServiceStub(self.network.channel(provider, "referral"))
        listing = referral_pb2.ListHandoffsRequest(states=[referral_pb2.HANDOFF_STATE_OFFERED], page_size=500)
        while not self._stop.wait(0.3):
            try:
                offers = stub.ListHandoffs(listing, timeout=CALL_TIMEOUT_S).handoffs
            except grpc.RpcError as error:
                with self._lock:
                    self.result.failed_calls[f"ListHandoffs {error.code().name}"] += 1
                continue
            except ValueError:  # the network closed its channels: it is stopping
                return
            for offer in offers:
                if offer.handoff_id in self.result.accepted_handoffs:
                    continue
                try:
                    stub.AcceptHandoff(referral_pb2.AcceptHandoffRequest(handoff_id=offer.handoff_id),
                                       timeout=CALL_TIMEOUT_S)
                except grpc.RpcError as error:  # a dead edge, or accepted already by a call that was cut
                    with self._lock:
                        self.result.failed_calls[f"AcceptHandoff {error.code().name}"] += 1
                    continue
                with self._lock:
                    self.result.accepted_handoffs.add(offer.handoff_id)


# -- the end state ----------------------------------------------------------------------------------------


def _column(network: LocalNetwork, service: str, query: str) -> list[str]:
    engine = create_engine(network.database_url(service))
    try:
        with engine.connect() as connection:
            return [str(row[0]) for row in connection.execute(sa.text(query))]
    finally:
        engine.dispose()


def _rows(network: LocalNetwork, service: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_engine(network.database_url(service))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(query))]
    finally:
        engine.dispose()


def wait_until(predicate: Callable[[], str | None], timeout_s: float, what: str, interval_s: float = 1.0) -> None:
    """Poll ``predicate`` (None when satisfied, else what is still wrong) until it holds; AssertionError at the
    deadline with the last complaint."""
    deadline = time.monotonic() + timeout_s
    complaint = predicate()
    while complaint is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"within {timeout_s:.0f}s, {what}: {complaint}")
        time.sleep(interval_s)
        complaint = predicate()


@dataclass(frozen=True)
class Consistency:
    """Figures of one end-state check (printed by the tests)."""

    referrals: int
    events: int
    ledger_leaves: int
    kafka_duplicates: int
    deliveries: int
    wire_redeliveries: int
    replay_tree_size: int

    def __str__(self) -> str:
        return (f"{self.referrals} referrals, {self.events} events = {self.ledger_leaves} ledger leaves "
                f"({self.kafka_duplicates} duplicate publications on Kafka), {self.deliveries} deliveries "
                f"({self.wire_redeliveries} redelivered on the wire, deduped by delivery id), replay tree size "
                f"{self.replay_tree_size}")


def check_network_consistent(network: LocalNetwork, inbox: PartnerInbox, accepted: Iterable[str],
                             out_dir: Path, *, settle_s: float = SETTLE_S) -> Consistency:
    """What must hold once the network has settled (waiting for it, bounded):

    - every submission answered OK is in exactly one referral of the referral service, and no referral
      exists that no OK answer named;
    - every event any service committed to its event store is on its Kafka topic and a leaf of audit's
      ledger exactly once, and the ledger has no other leaf; no dead letter anywhere;
    - every delivery of notify's log was delivered, and each reached the partners' inbox (deduped by
      delivery id, as receivers do) exactly once per delivery id; every offer notified its provider by
      webhook and e-mail; the inbox holds nothing the log does not;
    - once a signed checkpoint covers the whole ledger, the auditor's replay of the topics (``referralnet audit
      replay``) is clean and rebuilds the same tree.
    """
    accepted_ids = sorted(accepted)
    assert len(set(accepted_ids)) == len(accepted_ids), "two OK submissions were answered the same referral id"

    def referrals_complaint() -> str | None:
        found = collections.Counter(_column(network, "referral", "SELECT referral_id FROM referrals"))
        missing = sorted(set(accepted_ids) - set(found))
        extra = sorted(set(found) - set(accepted_ids))
        twice = sorted(rid for rid, count in found.items() if count > 1)
        if missing or extra or twice:
            return f"missing {missing[:5]} ({len(missing)}), unexpected {extra[:5]} ({len(extra)}), twice {twice}"
        return None

    wait_until(referrals_complaint, settle_s, "every OK submission is in exactly one referral")

    committed: dict[str, str] = {}
    for service in EVENT_PRODUCERS:
        for event_id in _column(network, service, "SELECT event_id FROM events"):
            committed[event_id] = service
    events_topics = {events_topic(service) for service in EVENT_PRODUCERS}

    def outbox_complaint() -> str | None:
        pending = {service: _column(network, service, "SELECT id FROM outbox WHERE published_at_us IS NULL")
                   for service in EVENT_PRODUCERS}
        return None if not any(pending.values()) else f"unpublished outbox rows {pending}"

    wait_until(outbox_complaint, settle_s, "every committed outbox row is published")

    def ledger_complaint() -> str | None:
        rows = _rows(network, "audit", "SELECT event_id, source_topic FROM audit_leaves")
        leaves = collections.Counter(str(row[0]) for row in rows)
        missing = sorted(set(committed) - set(leaves))
        twice = sorted(event_id for event_id, count in leaves.items() if count > 1)
        foreign = sorted(f"{row[0]}@{row[1]}" for row in rows if str(row[1]) not in events_topics
                         or str(row[0]) not in committed)
        if missing or twice or foreign:
            return (f"committed events not in the ledger {missing[:5]} ({len(missing)}), twice {twice[:5]}, "
                    f"leaves no service committed or from other topics {foreign[:5]} ({len(foreign)})")
        return None

    wait_until(ledger_complaint, settle_s, "every committed event is in audit's ledger exactly once")
    leaves_count = len(_column(network, "audit", "SELECT event_id FROM audit_leaves"))

    directory = load_directory(network.network_dir)
    on_kafka: collections.Counter[str] = collections.Counter()
    for topic in sorted(events_topics):
        on_kafka.update(event.envelope.header.event_id for event in read_topic(network.kafka_bootstrap, topic,
                                                                               directory, timeout_s=60.0))
    assert set(on_kafka) == set(committed), (
        f"Kafka and the event stores differ: only on Kafka {sorted(set(on_kafka) - set(committed))[:5]}, "
        f"only committed {sorted(set(committed) - set(on_kafka))[:5]}")
    for service in (*EVENT_PRODUCERS, "audit"):
        dead = _raw_count(network.kafka_bootstrap, dead_letter_topic(worker_name(service)))
        assert dead == 0, f"{dead} record(s) on {dead_letter_topic(worker_name(service))}"

    def deliveries_complaint() -> str | None:
        rows = _rows(network, "notify", "SELECT delivery_id, channel, status, org_id FROM deliveries")
        undelivered = [f"{row[0]}:{row[2]}" for row in rows if row[2] != "delivered"]
        got = {(notice.channel, notice.delivery_id) for notice in inbox.unique()}
        channel_name: dict[int, str] = {notify_pb2.CHANNEL_WEBHOOK: WEBHOOK, notify_pb2.CHANNEL_EMAIL: EMAIL}
        absent = [str(row[0]) for row in rows if (channel_name.get(int(row[1]), "?"), str(row[0])) not in got]
        if undelivered or absent:
            return (f"not delivered per the log {undelivered[:5]} ({len(undelivered)}), "
                    f"not in the inbox {absent[:5]} ({len(absent)})")
        return None

    wait_until(deliveries_complaint, settle_s, "every delivery of notify's log reached the inbox")
    deliveries = _rows(network, "notify", "SELECT delivery_id, notice_key, channel, org_id, notice_type "
                                          "FROM deliveries")
    logged = {str(row[0]) for row in deliveries}
    stray = sorted({notice.delivery_id for notice in inbox.unique()} - logged)
    assert not stray, f"the inbox got deliveries notify's log does not have: {stray[:5]}"
    per_key = collections.Counter((str(row[1]), int(row[2]), str(row[3])) for row in deliveries)
    assert all(count == 1 for count in per_key.values()), "a notice was logged twice for one endpoint"
    offers = _rows(network, "referral", "SELECT handoff_id, provider_org FROM handoffs")
    offered_notices = collections.Counter((str(row[3]), int(row[2])) for row in deliveries
                                      if int(row[4]) == notify_pb2.NOTICE_TYPE_HANDOFF_OFFERED)
    notified = {(str(row[1]), channel): offered_notices[(str(row[1]), channel)] for row in offers
                for channel in (notify_pb2.CHANNEL_WEBHOOK, notify_pb2.CHANNEL_EMAIL)}
    total_offers = collections.Counter(str(row[1]) for row in offers)
    for (org_id, channel), count in notified.items():
        assert count == total_offers[org_id], (
            f"{org_id} has {total_offers[org_id]} offers but {count} offer notices on channel {channel}")
    seen = collections.Counter((notice.channel, notice.delivery_id) for notice in inbox.notices() if notice.verified
                               or notice.channel == EMAIL)
    redeliveries = sum(count - 1 for count in seen.values())

    def checkpoint_complaint() -> str | None:
        signed = _column(network, "audit", "SELECT COALESCE(MAX(tree_size), 0) FROM audit_checkpoints")
        return None if int(signed[0]) == leaves_count else f"the last checkpoint covers {signed[0]} of {leaves_count}"

    wait_until(checkpoint_complaint, settle_s, "a signed checkpoint covers the whole ledger")
    report_dir = out_dir / "audit-report"
    status = referralnet_main(["audit", "replay", "--bootstrap", network.kafka_bootstrap, "--network",
                               str(network.network_dir), "--ca", str(network.network_dir / "ca" / "ca.pem"),
                               "--out", str(report_dir), "--no-progress"])
    report = json.loads((report_dir / "report.json").read_text())
    assert status == 0, f"the auditor's replay found violations: {json.dumps(report.get('violations'), indent=1)}"
    assert report["tree_size"] == leaves_count, f"the replay rebuilt {report['tree_size']} of {leaves_count} leaves"
    return Consistency(len(accepted_ids), len(committed), leaves_count, sum(c - 1 for c in on_kafka.values()),
                       len(deliveries), redeliveries, int(report["tree_size"]))


def _raw_count(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (end minus beginning offsets of its partitions)."""
    from kafka import KafkaConsumer, TopicPartition  # noqa: PLC0415

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        end, start = consumer.end_offsets(partitions), consumer.beginning_offsets(partitions)
        return sum(end[tp] - start[tp] for tp in partitions)
    finally:
        consumer.close()
