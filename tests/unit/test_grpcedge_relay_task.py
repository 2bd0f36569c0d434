"""The outbox relay as an edge background task: ``wake()`` publishes at once, ``stop()`` does not wait out a pause.

What is real: the event store on a SQLite file, the envelope's cryptography, the relay and its thread.
Replaced: the Kafka producer, by one that acknowledges every send (the broker path is
tests/integration/test_outbox_relay.py). The idle pause is 30 s, so anything quicker is the wake-up's doing.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.core.envelope import Sealer, SectionKind
from services.core.eventstore.schema import METADATA
from services.core.eventstore.store import EventStore, NewEvent
from services.core.grpcedge.relay_task import RelayTask
from services.core.messaging.relay import OutboxRelay
from tests.unit.envelope_support import POLICE, ROUTING_PLAINTEXT, SyntheticOrg, new_data_key

TOPIC = "referralnet.intake.events.v1"
LONG_PAUSE_S = 30.0


@dataclass
class Acknowledged:
    def get(self, timeout: float | None = None) -> object:
        return "metadata"


@dataclass
class RecordingProducer:
    sent: list[str] = field(default_factory=list)
    closed: bool = False

    def send(self, topic, value=None, key=None, headers=None):
        self.sent.append(dict(headers)["event-id"].decode())
        return Acknowledged()

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


class Appender:
    def __init__(self, engine: sa.Engine) -> None:
        org = SyntheticOrg.create(POLICE)
        self.engine = engine
        self.store = EventStore(Sealer(org.signer), org.org_id, "intake", org.signing_key_id, TOPIC)
        self.key = new_data_key()

    def append(self) -> str:
        with Session(self.engine) as session, session.begin():
            [event] = self.store.append(session, f"sub-{uuid.uuid4().hex}", 0, [
                NewEvent("ReferralSubmitted", 1, {SectionKind.ROUTING: (self.key, ROUTING_PLAINTEXT)})])
        return event.event_id


def wait_for(condition, timeout_s: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not within {timeout_s}s"
        time.sleep(0.01)
    return time.monotonic() - started


def test_wake_publishes_a_new_event_at_once_and_stop_ends_the_idle_pause(engine):
    producer = RecordingProducer()
    task = RelayTask(engine, lambda: producer, idle_sleep_s=LONG_PAUSE_S)
    appender = Appender(engine)
    first = appender.append()
    task.start()
    try:
        wait_for(lambda: producer.sent == [first], 5)  # the first round runs at start
        time.sleep(0.2)  # the relay is now in its 30 s idle pause
        second = appender.append()
        task.wake()
        assert wait_for(lambda: producer.sent == [first, second], 5) < 5
        third = appender.append()  # without a wake-up it waits for the pause to run out
        time.sleep(0.5)
        assert producer.sent == [first, second]
        task.wake()
        wait_for(lambda: producer.sent == [first, second, third], 5)
    finally:
        started = time.monotonic()
        task.stop(timeout=5)
        stopped_in = time.monotonic() - started
    assert stopped_in < 2, "stop must not wait for the idle pause"
    assert not task.running
    assert producer.closed, "the producer is closed when the task stops"


def test_a_wake_up_during_a_round_is_kept_for_the_next_pause(engine):
    """A wake-up set while a round runs must not be lost: the next pause ends at once and polls again."""
    relay = OutboxRelay(engine, RecordingProducer, batch_size=10)
    stop, wakeup = threading.Event(), threading.Event()
    wakeup.set()  # as if a commit woke the relay while it was publishing
    calls = []
    original = relay.publish_pending

    def counting() -> int:
        calls.append(time.monotonic())
        if len(calls) == 2:
            stop.set()
        return original()

    relay.publish_pending = counting  # type: ignore[method-assign]
    thread = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_sleep_s": LONG_PAUSE_S,
                                                                      "wakeup": wakeup})
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "the pause after the first round should have ended at the kept wake-up"
    assert len(calls) == 2 and not wakeup.is_set()


def test_the_task_starts_once_and_accepts_bootstrap_servers_as_a_list(engine):
    task = RelayTask(engine, ["127.0.0.1:1", "127.0.0.1:2"], idle_sleep_s=LONG_PAUSE_S)
    task.stop(timeout=1)  # stopping a task never started is harmless
    started = RelayTask(engine, RecordingProducer, idle_sleep_s=LONG_PAUSE_S)
    started.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            started.start()
    finally:
        started.stop(timeout=5)
