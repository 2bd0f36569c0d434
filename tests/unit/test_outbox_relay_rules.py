"""The relay's bookkeeping rules, with a scripted producer: which rows a round marks when sends fail.

What is real: the event store on a SQLite file, the envelope's cryptography, the relay. Replaced: the Kafka
producer, by one whose sends succeed or fail as the test says (a real broker cannot be made to fail one
record of a stream and acknowledge the next on demand; tests/integration/test_outbox_relay.py covers the
rest against real Kafka).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from kafka.errors import KafkaTimeoutError, NotEnoughReplicasError
from sqlalchemy.orm import Session

from services.core.envelope import Sealer, SectionKind
from services.core.eventstore.schema import METADATA, events, outbox
from services.core.eventstore.store import EventStore, NewEvent
from services.core.messaging.producer import DEFAULT_CONFIG, producer_config
from services.core.messaging.relay import OutboxRelay
from tests.unit.envelope_support import POLICE, ROUTING_PLAINTEXT, SyntheticOrg, new_data_key

TOPIC = "referralnet.intake.events.v1"


@dataclass
class Future:
    error: Exception | None

    def get(self, timeout: float | None = None) -> object:
        if self.error is not None:
            raise self.error
        return "metadata"


@dataclass
class ScriptedProducer:
    """Fails the sends of the event ids in ``fail_async`` (at get) and ``fail_sync`` (at send)."""

    fail_async: set[str] = field(default_factory=set)
    fail_sync: set[str] = field(default_factory=set)
    sent: list[str] = field(default_factory=list)
    closed: bool = False

    def send(self, topic, value=None, key=None, headers=None):
        event_id = dict(headers)["event-id"].decode()
        if event_id in self.fail_sync:
            raise KafkaTimeoutError("Failed to update metadata after 1.0 secs.")
        self.sent.append(event_id)
        return Future(NotEnoughReplicasError() if event_id in self.fail_async else None)

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        self.closed = True


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite+pysqlite:///{tmp_path / 'outbox.db'}")
    METADATA.create_all(engine)
    yield engine
    engine.dispose()


def append_interleaved(engine: sa.Engine, streams: list[str], count: int) -> dict[tuple[str, int], str]:
    """``count`` events on each stream, one transaction per sequence; returns {(stream, seq): event id}."""
    org = SyntheticOrg.create(POLICE)
    store = EventStore(Sealer(org.signer), org.org_id, "intake", org.signing_key_id, TOPIC)
    key = new_data_key()
    ids: dict[tuple[str, int], str] = {}
    for version in range(count):
        with Session(engine) as session, session.begin():
            for stream in streams:
                [event] = store.append(session, stream, version, [
                    NewEvent("ReferralSubmitted", 1, {SectionKind.ROUTING: (key, ROUTING_PLAINTEXT)})])
                ids[stream, event.stream_sequence] = event.event_id
    return ids


def published_events(engine: sa.Engine) -> set[str]:
    query = (sa.select(events.c.event_id).join(outbox, outbox.c.event_position == events.c.position)
             .where(outbox.c.published_at_us.is_not(None)))
    with engine.connect() as conn:
        return set(conn.scalars(query))


def relay_with(engine: sa.Engine, *producers: ScriptedProducer) -> tuple[OutboxRelay, list[ScriptedProducer]]:
    made = list(producers)
    return OutboxRelay(engine, lambda: made.pop(0), batch_size=100), made


def test_an_unacknowledged_event_keeps_the_rest_of_its_stream_pending_even_if_they_were_acknowledged(engine):
    s, t = "ref-s-" + uuid.uuid4().hex[:6], "ref-t-" + uuid.uuid4().hex[:6]
    ids = append_interleaved(engine, [s, t], 4)
    first = ScriptedProducer(fail_async={ids[s, 2]})
    second = ScriptedProducer()
    relay, unused = relay_with(engine, first, second)

    assert relay.publish_pending() == 5
    assert published_events(engine) == {ids[s, 1], *(ids[t, n] for n in range(1, 5))}
    assert first.closed, "after a failed send the producer is discarded"

    assert relay.publish_pending() == 3
    assert second.sent == [ids[s, 2], ids[s, 3], ids[s, 4]], "the stream is re-sent from its gap, in order"
    assert unused == []
    assert relay.publish_pending() == 0


def test_a_send_refused_at_once_stops_its_stream_and_its_topic_for_the_round(engine):
    s, t = "ref-s-" + uuid.uuid4().hex[:6], "ref-t-" + uuid.uuid4().hex[:6]
    ids = append_interleaved(engine, [s, t], 3)
    producer = ScriptedProducer(fail_sync={ids[s, 2]})
    relay, _ = relay_with(engine, producer, ScriptedProducer())

    assert relay.publish_pending() == 2  # s1 and t1 went before the refusal
    assert producer.sent == [ids[s, 1], ids[t, 1]], "a metadata timeout blocks its topic: no send would succeed"
    assert published_events(engine) == {ids[s, 1], ids[t, 1]}


def test_the_cooperative_yield_hook_runs_every_n_sends(engine):
    append_interleaved(engine, ["ref-" + uuid.uuid4().hex[:8] for _ in range(25)], 10)
    calls = []
    relay = OutboxRelay(engine, ScriptedProducer, batch_size=1_000, cooperative_yield=lambda: calls.append(1),
                        yield_every=40)
    assert relay.publish_pending() == 250
    assert len(calls) == 250 // 40


def test_producer_config_is_idempotent_acks_all_order_keeping_and_never_creates_topics():
    config = producer_config("127.0.0.1:9092", linger_ms=20, security_protocol="SSL")
    assert config["enable_idempotence"] is True and config["acks"] == "all"
    assert config["allow_auto_create_topics"] is False
    assert config["max_in_flight_requests_per_connection"] <= 5
    assert (config["linger_ms"], config["security_protocol"]) == (20, "SSL")
    assert config["delivery_timeout_ms"] == DEFAULT_CONFIG["delivery_timeout_ms"]


@pytest.mark.parametrize("override", [
    {"enable_idempotence": False}, {"acks": 1}, {"allow_auto_create_topics": True},
    {"max_in_flight_requests_per_connection": 6},
])
def test_producer_config_refuses_what_would_break_idempotence_durability_or_order(override):
    with pytest.raises(ValueError, match="would break"):
        producer_config("127.0.0.1:9092", **override)
