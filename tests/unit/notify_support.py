"""Builders shared by the notify tests: a network whose organisations list notify endpoints, referral's events
as referral would send them, a recording ``Transports``, and reading back notify's own events.

Everything is synthetic: pseudonymous ids, fictional organisations, ``.invalid`` hosts and addresses.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uuid6
from google.protobuf.message import Message
from sqlalchemy.orm import Session

from services.core.envelope import EventHeader, Opener, SectionKind, Verifier, new_event_id
from services.core.events.catalogues import NOTIFY_EVENTS, REFERRAL_EVENTS
from services.core.eventstore import NewEvent, unit_of_work
from services.core.eventstore.schema import events as events_table
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral
from services.core.identity.directory import Directory
from services.core.identity.endpoints import set_notify_endpoints
from services.core.identity.network import NetworkCreated, init_network
from services.core.identity.records import service_owner, signing_key_id
from services.core.identity.seed import SEED_ORGANISATIONS, SeedOrganisation
from services.core.identity.vocabulary import parse_region, parse_role
from services.core.keyvault.routing_keys import NetworkRoutingKeys, load_routing_keys
from services.notify.adapters.transports import SendOutcome
from services.notify.application.app import NotifyApplication
from tests.unit.referral_support import HOUR_US, Clock, new_referral_id, new_subject_id

REFERRAL = service_owner("referral")
DELIVERED = SendOutcome(delivered=True, outcome="delivered")
UNAVAILABLE = SendOutcome(delivered=False, outcome="http_503")
GONE = SendOutcome(delivered=False, outcome="http_410", permanent=True)

COORDINATORS = (
    SeedOrganisation("coo-cus-01", "Coordinación Sintética Regional Cusco", parse_role("coordinator"),
                     (parse_region("cusco"),)),
    SeedOrganisation("coo-lor-01", "Fictional Loreto Coordination Desk", parse_role("coordinator"),
                     (parse_region("loreto"), parse_region("madre_de_dios")), language="en"),
)
"""Two coordinators serving some departments each (the seed's one coordinator serves every seed department)."""

NOTIFY_ORGS: tuple[SeedOrganisation, ...] = (
    *(seed for seed in SEED_ORGANISATIONS if seed.org_id != "coo-lim-01"), *COORDINATORS)

WEBHOOK_ONLY = ("alb-mdd-01", "psi-cus-01", "coo-lor-01")
EMAIL_ONLY = ("leg-aqp-01",)
BOTH = ("alb-cus-01", "coo-cus-01", "ong-lor-01", "pro-nna-01")
NO_ENDPOINTS = ("psi-lim-01", "alb-lim-01")


def webhook_url(org_id: str, base: str = "https://hooks.partner.invalid") -> str:
    return f"{base}/hooks/{org_id}"


def email_address(org_id: str) -> str:
    return f"{org_id}@inbox.partner.invalid"


def notify_network(folder: Path, *, webhooks: Mapping[str, str] | None = None,
                   emails: Mapping[str, str] | None = None) -> tuple[NetworkCreated, Directory]:
    """A ``network init`` network of ``NOTIFY_ORGS`` with endpoints set by ``network endpoints``: by default the
    WEBHOOK_ONLY / EMAIL_ONLY / BOTH orgs, on ``.invalid`` hosts; the directory as it then is."""
    network = init_network(folder, organisations=NOTIFY_ORGS)
    if webhooks is None:
        webhooks = {org: webhook_url(org) for org in (*WEBHOOK_ONLY, *BOTH)}
    if emails is None:
        emails = {org: email_address(org) for org in (*EMAIL_ONLY, *BOTH)}
    directory = network.directory
    for org_id in sorted(set(webhooks) | set(emails)):
        directory = set_notify_endpoints(network.layout.root, org_id, webhook_url=webhooks.get(org_id, ""),
                                         email=emails.get(org_id, ""))
    return network, directory


@dataclass
class ReferralFeed:
    """One referral's events, in stream order, as the referral service produces them (header + routing payload)."""

    referral_id: str = field(default_factory=new_referral_id)
    subject_id: str = field(default_factory=new_subject_id)
    clock: Clock = field(default_factory=Clock)
    producer: str = REFERRAL
    region: vocab.Region = vocab.REGION_MADRE_DE_DIOS
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def header(self, message: Message) -> EventHeader:
        return EventHeader(event_id=new_event_id(), event_type=message.DESCRIPTOR.name, schema_version=1,
                           stream_id=f"referral-{self.referral_id}", stream_sequence=next(self._sequence),
                           occurred_at_unix_micros=self.clock(), producer_org=self.producer,
                           producer_service=self.producer.removeprefix("svc:"),
                           signing_key_id=signing_key_id(self.producer))

    def _of(self, message: Message) -> tuple[EventHeader, Any]:
        return self.header(message), message

    def offered(self, provider: str, service_type: vocab.ServiceType = vocab.SERVICE_TYPE_SHELTER, *,
                window_us: int = 2 * HOUR_US, consent_id: str = "con-synthetic") -> tuple[EventHeader, Any]:
        now = self.clock()
        return self._of(referral.HandoffOffered(
            handoff_id="hof-" + uuid6.uuid7().hex, referral_id=self.referral_id, subject_id=self.subject_id,
            need_index=0, service_type=service_type, urgency=vocab.URGENCY_IMMEDIATE, region=self.region,
            minor=False, provider_org=provider, offered_at_unix_micros=now, expires_at_unix_micros=now + window_us,
            consent_id=consent_id, attempt=1))

    def _handoff(self, kind: type[Message], offer: referral.HandoffOffered, **fields: Any) -> tuple[EventHeader, Any]:
        return self._of(kind(handoff_id=offer.handoff_id, referral_id=self.referral_id, subject_id=self.subject_id,
                             provider_org=offer.provider_org, **fields))

    def accepted(self, offer: referral.HandoffOffered) -> tuple[EventHeader, Any]:
        return self._handoff(referral.HandoffAccepted, offer, accepted_at_unix_micros=self.clock())

    def declined(self, offer: referral.HandoffOffered) -> tuple[EventHeader, Any]:
        return self._handoff(referral.HandoffDeclined, offer, reason=1, declined_at_unix_micros=self.clock())

    def expired(self, offer: referral.HandoffOffered) -> tuple[EventHeader, Any]:
        return self._handoff(referral.HandoffExpired, offer, expired_at_unix_micros=self.clock())

    def withdrawn(self, offer: referral.HandoffOffered, reason: int, by: str = "pol-mdd-01") -> tuple[EventHeader, Any]:
        return self._handoff(referral.HandoffWithdrawn, offer, reason=reason, withdrawn_by_org=by,
                             withdrawn_at_unix_micros=self.clock())

    def started(self, offer: referral.HandoffOffered) -> tuple[EventHeader, Any]:
        return self._handoff(referral.ServiceStarted, offer, started_at_unix_micros=self.clock())

    def completed(self, offer: referral.HandoffOffered) -> tuple[EventHeader, Any]:
        return self._handoff(referral.ServiceCompleted, offer, outcome=1, completed_at_unix_micros=self.clock())

    def escalated(self, service_type: vocab.ServiceType = vocab.SERVICE_TYPE_SHELTER) -> tuple[EventHeader, Any]:
        return self._of(referral.ReferralEscalated(
            referral_id=self.referral_id, subject_id=self.subject_id, need_index=0, service_type=service_type,
            region=self.region, minor=False, escalated_at_unix_micros=self.clock()))

    def closed(self) -> tuple[EventHeader, Any]:
        return self._of(referral.ReferralClosed(referral_id=self.referral_id, subject_id=self.subject_id,
                                                closed_at_unix_micros=self.clock()))


def apply_referral(app: NotifyApplication, engine: sa.Engine, items: Iterable[tuple[EventHeader, Message]]) -> int:
    """Apply referral events one transaction each, as the worker would; the deliveries added."""
    added = 0
    for header, message in items:
        with unit_of_work(engine) as session:
            added += app.apply_referral_event(session, header, message)
    return added


def apply_intake(app: NotifyApplication, engine: sa.Engine, items: Iterable[tuple[EventHeader, Message]]) -> int:
    """Apply intake events one transaction each, as the worker would; the deliveries added."""
    added = 0
    for header, message in items:
        with unit_of_work(engine) as session:
            added += app.apply_intake_event(session, header, message)
    return added


@dataclass(frozen=True)
class Sent:
    """One send a RecordingTransports saw."""

    channel: str  # "webhook" | "email"
    endpoint: str
    delivery_id: str
    body: bytes = b""  # the webhook body
    secret: bytes = b""
    subject: str = ""
    text: str = ""


class RecordingTransports:
    """``Transports`` that replaces the network: records every send and answers from a script per endpoint
    (``delivered`` once the script for that endpoint is used up). Thread-safe, for racing dispatchers."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self._script: dict[str, deque[SendOutcome]] = {}
        self._lock = threading.Lock()
        self.on_send: list[Any] = []  # callables run inside each send (e.g. a barrier)

    def answer(self, endpoint: str, *outcomes: SendOutcome) -> None:
        self._script.setdefault(endpoint, deque()).extend(outcomes)

    def _outcome(self, sent: Sent) -> SendOutcome:
        for hook in self.on_send:
            hook(sent)
        with self._lock:
            self.sent.append(sent)
            script = self._script.get(sent.endpoint)
            return script.popleft() if script else DELIVERED

    def send_webhook(self, url: str, secret: bytes, delivery_id: str, body: bytes) -> SendOutcome:
        return self._outcome(Sent("webhook", url, delivery_id, body=body, secret=secret))

    def send_email(self, to: str, subject: str, text: str, delivery_id: str) -> SendOutcome:
        return self._outcome(Sent("email", to, delivery_id, subject=subject, text=text))

    def to(self, endpoint: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.endpoint == endpoint]


@dataclass(frozen=True)
class NotifyEvent:
    """One of notify's stored events, verified with the directory and opened with the routing key."""

    stream_id: str
    event_id: str
    producer_org: str
    message: Any


def notify_events(engine: sa.Engine, network_dir: Path, directory: Directory) -> list[NotifyEvent]:
    """Every event in notify's store, in append order."""
    keys, verifier, opener = load_routing_keys(network_dir), Verifier(directory, workers=1), Opener()
    with Session(engine) as session:
        rows = list(session.execute(sa.select(events_table.c.envelope).order_by(events_table.c.position)).scalars())
    found = []
    for wire in rows:
        envelope = verifier.verify(bytes(wire))
        section = envelope.section(SectionKind.ROUTING)
        payload = opener.open(envelope, SectionKind.ROUTING, keys.key(section.key_id))
        header = envelope.header
        found.append(NotifyEvent(header.stream_id, header.event_id, header.producer_org,
                                 NOTIFY_EVENTS.decode(header.event_type, header.schema_version, payload)))
    verifier.close()
    return found


def sealed_referral_event(message: Message, keys: NetworkRoutingKeys, occurred_at: int) -> NewEvent:
    """A referral event to append with referral's store: its payload as the routing section."""
    event_type, version, payload = REFERRAL_EVENTS.encode(message)
    return NewEvent(event_type, version, {SectionKind.ROUTING: (keys.current(), payload)},
                    occurred_at_unix_micros=occurred_at)


def replaced_header(header: EventHeader, **changes: Any) -> EventHeader:
    return dataclasses.replace(header, **changes)
