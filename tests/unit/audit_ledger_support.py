"""Builders shared by the audit ledger's application and integration tests: envelopes sealed as intake and
referral seal them (real keys of a ``network init`` network, routing section under the network routing key),
forged and tampered copies, dead-letter records, and the tree a replay of given leaf inputs must give.

Everything is synthetic: pseudonymous ids, seed organisations, no personal data anywhere.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from google.protobuf.message import Message

from services.audit.adapters.database import migrate
from services.audit.adapters.source import SOURCE_CATALOGUES
from services.audit.application.records import SourceRecord
from services.audit.domain.merkle import MemoryTree
from services.core.database import create_engine
from services.core.envelope import EnvelopeSigner, EventHeader, Sealer, SectionKind, Verifier, new_event_id
from services.core.envelope.envelope import SealedEvent
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as vocab
from services.core.generated.referralnet.referral.v1 import events_pb2 as referral
from services.core.identity.keystore import load_org_signing_key, load_service_signing_key
from services.core.identity.records import service_owner, signing_key_id
from services.core.keyvault.routing_keys import load_routing_keys
from services.core.runtime.dead_letter import DeadLetter, Origin, dead_letter_headers
from tests.unit.referral_support import HOUR_US, SubjectFeed

INTAKE_TOPIC = "referralnet.intake.events.v1"
REFERRAL_TOPIC = "referralnet.referral.events.v1"
REFERRAL_DLQ = "referralnet.referral-worker.dlq.v1"


class Envelopes:
    """Seals events with the network folder's real keys: as a network service, or as an impostor org."""

    def __init__(self, network_dir: Path) -> None:
        self.network_dir = network_dir
        self.keys = load_routing_keys(network_dir)
        self._sealers: dict[str, Sealer] = {}

    def sealer(self, producer: str) -> Sealer:
        """The sealer of ``svc:<service>`` or of an organisation, with its own signing key."""
        if producer not in self._sealers:
            if producer.startswith("svc:"):
                key = load_service_signing_key(self.network_dir, producer.removeprefix("svc:"))
            else:
                key = load_org_signing_key(self.network_dir, producer)
            self._sealers[producer] = Sealer(EnvelopeSigner(producer, signing_key_id(producer), key))
        return self._sealers[producer]

    def seal(self, header: EventHeader, message: Message) -> SealedEvent:
        """The envelope of one event: its payload as the routing section, as its producer seals it."""
        _, _, payload = SOURCE_CATALOGUES[header.producer_service].encode(message)
        return self.sealer(header.producer_org).seal_event(
            header, {SectionKind.ROUTING: (self.keys.current(), payload)})

    def forged(self, header: EventHeader, message: Message, org_id: str = "pol-mdd-01") -> bytes:
        """``header`` (claiming its service as producer) signed with an organisation's key instead."""
        _, _, payload = SOURCE_CATALOGUES[header.producer_service].encode(message)
        sealer = Sealer(EnvelopeSigner(header.producer_org, header.signing_key_id,
                                       load_org_signing_key(self.network_dir, org_id)))
        return sealer.seal(header, {SectionKind.ROUTING: (self.keys.current(), payload)})


def flip_last_byte(wire: bytes) -> bytes:
    """The envelope with its last byte flipped (inside the last field: a tampered record)."""
    return wire[:-1] + bytes([wire[-1] ^ 0x01])


class ReferralFeed:
    """One referral's events as the referral service produces them (stream ``referral-<id>``)."""

    def __init__(self, feed: SubjectFeed, referral_id: str | None = None) -> None:
        self.feed = feed
        self.referral_id = referral_id or f"ref-{new_event_id().replace('-', '')}"
        self._sequence = itertools.count(1)

    def header(self, message: Message) -> EventHeader:
        owner = service_owner("referral")
        return EventHeader(event_id=new_event_id(), event_type=message.DESCRIPTOR.name, schema_version=1,
                           stream_id=f"referral-{self.referral_id}", stream_sequence=next(self._sequence),
                           occurred_at_unix_micros=self.feed.clock(), producer_org=owner,
                           producer_service="referral", signing_key_id=signing_key_id(owner))

    def offer(self, provider: str, consent_id: str) -> tuple[EventHeader, Message]:
        message = referral.HandoffOffered(
            handoff_id=f"hof-{new_event_id().replace('-', '')}", referral_id=self.referral_id,
            subject_id=self.feed.subject_id, need_index=0, service_type=vocab.SERVICE_TYPE_SHELTER,
            urgency=vocab.URGENCY_IMMEDIATE, region=vocab.REGION_MADRE_DE_DIOS, provider_org=provider,
            offered_at_unix_micros=self.feed.clock(), expires_at_unix_micros=self.feed.clock() + HOUR_US,
            consent_id=consent_id, attempt=1)
        return self.header(message), message


@dataclass
class Story:
    """A subject's consent, an offer and a release, then a revocation and a release it no longer covers."""

    subject: SubjectFeed
    intake: list[tuple[EventHeader, Message]]
    referral: list[tuple[EventHeader, Message]]
    violating_release: EventHeader


def consent_story(provider: str = "alb-mdd-01") -> Story:
    """The events of :class:`Story`, each side in its stream's order."""
    feed = SubjectFeed()
    given = feed.consent(role=vocab.ORG_ROLE_SHELTER)
    submitted = feed.submission(consent_ids=[given[1].consent_id])
    referral_feed = ReferralFeed(feed, submitted[1].referral_id)
    feed.clock.advance(1_000_000)
    offered = referral_feed.offer(provider, given[1].consent_id)
    feed.clock.advance(1_000_000)
    released = feed.key_released(provider)
    released[1].consent_id = given[1].consent_id
    feed.clock.advance(HOUR_US)
    revoked = feed.revoke(given[1].consent_id)
    feed.clock.advance(1_000_000)
    late = feed.key_released(provider)  # a buggy producer: sealed and signed properly, after the revocation
    late[1].consent_id = given[1].consent_id
    return Story(feed, [given, submitted, released, revoked, late], [offered], late[0])


def records(topic: str, partition: int, wires: Sequence[bytes | None], first_offset: int = 0) -> list[SourceRecord]:
    """Source records of one partition, consecutive offsets from ``first_offset``."""
    return [SourceRecord(topic, partition, first_offset + index, wire) for index, wire in enumerate(wires)]


def dead_letter_record(wire: bytes, *, reason: str, consumer: str, original: tuple[str, int, int],
                       offset: int, topic: str = REFERRAL_DLQ) -> SourceRecord:
    """A record as a worker's entrypoint dead-letters it (original bytes, ``dlq-*`` headers)."""
    headers = dead_letter_headers(DeadLetter(reason, f"event: {reason}"), Origin(*original, consumer), attempts=1)
    return SourceRecord(topic, 0, offset, wire, tuple(headers))


def replayed_root(leaf_inputs: Iterable[bytes]) -> bytes:
    """The root a replay appending these leaf inputs in this order computes."""
    tree = MemoryTree()
    for leaf_input in leaf_inputs:
        tree.append(leaf_input)
    return tree.root()


def canonical_hashes(verifier: Verifier, wires: Iterable[bytes]) -> list[bytes]:
    """The leaf input of each envelope (its canonical hash, once verified)."""
    return [verifier.verify(wire).canonical_hash() for wire in wires]


@pytest.fixture(name="engine")
def audit_engine_fixture(tmp_path: Path) -> Iterator[sa.Engine]:
    """Audit's database, migrated, on a fresh SQLite file."""
    made = create_engine(f"sqlite+pysqlite:///{tmp_path / 'audit.db'}")
    migrate(made)
    yield made
    made.dispose()
