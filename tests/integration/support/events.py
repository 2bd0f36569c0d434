"""Sealed test events with the real keys of a ``network init`` network, produced straight to Kafka.

The outbox relay is not involved: these tests prove the consuming side alone. Payloads are synthetic
routing facts of nobody.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.structs import TopicPartition

from services.core.envelope import EnvelopeSigner, EventHeader, Sealer, SectionKind, new_event_id, now_micros
from services.core.identity.keystore import load_org_signing_key
from services.core.identity.records import signing_key_id
from services.core.keyvault.keys import DataKey, new_data_key
from services.core.telemetry.propagation import kafka_headers

PRODUCER_ORG = "pol-mdd-01"
REGIONS = ("CUS", "LOR", "MDD", "LIM", "PUN", "ARE")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass(frozen=True)
class Event:
    """One sealed event as it goes on the topic."""

    event_id: str
    stream_id: str
    sequence: int
    wire: bytes
    event_type: str = "EffectRequested"


@dataclass
class EventFactory:
    """Seals events as ``org_id`` (its real signing key) with one routing data key the service holds."""

    network: Path
    org_id: str = PRODUCER_ORG
    routing_key: DataKey = field(default_factory=new_data_key)

    def __post_init__(self) -> None:
        key_id = signing_key_id(self.org_id)
        self.sealer = Sealer(EnvelopeSigner(self.org_id, key_id, load_org_signing_key(self.network, self.org_id)))

    def write_keys(self, path: Path) -> Path:
        """The keys file the service reads (``EFFECTS_KEYS_FILE``)."""
        path.write_text(json.dumps({self.routing_key.key_id: self.routing_key.key.hex()}))
        return path

    def header(self, stream_id: str, sequence: int, event_type: str = "EffectRequested",
               signing_key: str | None = None) -> EventHeader:
        return EventHeader(event_id=new_event_id(), event_type=event_type, schema_version=1, stream_id=stream_id,
                           stream_sequence=sequence, occurred_at_unix_micros=now_micros(),
                           producer_org=self.org_id, producer_service="intake",
                           signing_key_id=signing_key or signing_key_id(self.org_id), traceparent=TRACEPARENT)

    def event(self, stream_id: str, sequence: int, event_type: str = "EffectRequested") -> Event:
        header = self.header(stream_id, sequence, event_type)
        routing = json.dumps({"region": REGIONS[sequence % len(REGIONS)], "urgency": "high"}).encode()
        wire = self.sealer.seal(header, {SectionKind.ROUTING: (self.routing_key, routing)})
        return Event(header.event_id, stream_id, sequence, wire, event_type)

    def signed_by_unknown_key(self, stream_id: str, sequence: int) -> Event:
        """A well-formed event signed by a key the directory does not list."""
        rogue = Sealer(EnvelopeSigner(self.org_id, f"{self.org_id}#sig-9", Ed25519PrivateKey.generate()))
        header = self.header(stream_id, sequence, signing_key=f"{self.org_id}#sig-9")
        wire = rogue.seal(header, {SectionKind.ROUTING: (self.routing_key, b'{"region":"CUS"}')})
        return Event(header.event_id, stream_id, sequence, wire)

    def streams(self, streams: int, per_stream: int, prefix: str = "ref") -> Iterator[Event]:
        """``per_stream`` events in each of ``streams`` streams, interleaved round-robin."""
        names = [f"{prefix}-{uuid.uuid4().hex[:8]}-{i:03d}" for i in range(streams)]
        for sequence in range(1, per_stream + 1):
            for name in names:
                yield self.event(name, sequence)


def producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
                         client_id=f"test-producer-{os.getpid()}")


def produce(bootstrap: str, topic: str, events: Iterable[Event], *, pause_every: int = 0,
            pause_seconds: float = 0.0) -> int:
    """Send ``events`` keyed by stream (so a stream stays in one partition, in order); returns the count."""
    client = producer(bootstrap)
    futures = []
    for index, event in enumerate(events, start=1):
        headers = kafka_headers(event.event_id, event.event_type, TRACEPARENT, "")
        futures.append(client.send(topic, key=event.stream_id.encode(), value=event.wire, headers=headers))
        if pause_every and index % pause_every == 0:
            client.flush(timeout=30)
            time.sleep(pause_seconds)
    client.flush(timeout=60)
    for future in futures:
        future.get(timeout=30)
    client.close()
    return len(futures)


def send_raw(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> list[int]:
    """Send (key, value) records in order (one partition topics); returns their offsets."""
    client = producer(bootstrap)
    offsets = [client.send(topic, key=key, value=value).get(timeout=30).offset for key, value in records]
    client.close()
    return offsets


class Topics:
    """Creates uniquely named topics (and the consumer's dead-letter topic) and deletes them afterwards."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="runtime-test-admin")
        self.created: list[str] = []

    def create(self, name: str, partitions: int) -> str:
        self.admin.create_topics([NewTopic(name, partitions, 1)])
        self.admin.wait_for_topics([name], timeout_ms=30_000)
        self.created.append(name)
        return name

    def stable_members(self, group: str) -> int:
        """Members of a Stable group that all hold partitions; 0 while the group is rebalancing."""
        described = self.admin.describe_groups([group]).get(group)
        if not described or described["group_state"] != "Stable":
            return 0
        members = described["members"]
        holding = [m for m in members if any(t["partitions"] for t in m["member_assignment"]["assigned_partitions"])]
        return len(members) if len(holding) == len(members) else 0

    def committed(self, group: str) -> dict[TopicPartition, int]:
        offsets = self.admin.list_group_offsets({group: None}).get(group, {})
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    def close(self) -> None:
        if self.created:
            self.admin.delete_topics(self.created)
        self.admin.close()


def read_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[Any]:
    """Every record of ``topic`` from the start, waiting up to ``timeout_s`` for ``expected`` of them."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=1_000)
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < expected and time.monotonic() < deadline:
        records.extend(record for batch in consumer.poll(timeout_ms=500).values() for record in batch)
    consumer.close()
    return records
