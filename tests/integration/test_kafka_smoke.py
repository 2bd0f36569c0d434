"""Smoke tests that prove the local Kafka is a real broker with the guarantees the services rely on."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from tests.kafka_topics import TopicFactory

pytestmark = pytest.mark.integration

RECORDS = 10_000
PAYLOAD = b"x" * 200


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics for one test and delete them afterwards."""
    factory = TopicFactory(kafka_bootstrap, "smoke")
    yield factory
    factory.close()


def _consumer(bootstrap: str, topic: str, group: str, **overrides: object) -> KafkaConsumer:
    config: dict[str, object] = {
        "bootstrap_servers": bootstrap, "group_id": group, "enable_auto_commit": False,
        # consumer_timeout_ms: iteration ends after this long with nothing new, i.e. the topic is drained.
        "auto_offset_reset": "earliest", "consumer_timeout_ms": 4_000, "max_poll_records": 500,
    }
    config.update(overrides)
    consumer = KafkaConsumer(**config)
    consumer.subscribe([topic])
    return consumer


def _produce_numbered(bootstrap: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                             linger_ms=5, client_id="smoke-producer")
    futures = [
        producer.send(topic, key=f"stream-{i % 17}".encode(), value=PAYLOAD,
                      headers=[("seq", str(i).encode()), ("event-type", b"SmokeRecorded")])
        for i in range(count)
    ]
    producer.flush(timeout=60)
    metadata = [future.get(timeout=30) for future in futures]
    producer.close()
    assert all(m.offset >= 0 for m in metadata)


def test_idempotent_producer_round_trips_10k_records_with_headers_in_key_order(kafka_bootstrap, new_topic):
    topic = new_topic()
    _produce_numbered(kafka_bootstrap, topic, RECORDS)

    consumer = _consumer(kafka_bootstrap, topic, f"smoke-{uuid.uuid4().hex[:8]}")
    seen: dict[int, tuple[bytes, dict[str, bytes]]] = {}
    last_seq_per_key: dict[bytes, int] = {}
    for record in consumer:
        headers = dict(record.headers)
        seq = int(headers["seq"])
        assert seq not in seen, f"record {seq} delivered twice"
        assert record.key is not None
        assert last_seq_per_key.get(record.key, -1) < seq, "records of one key arrived out of order"
        last_seq_per_key[record.key] = seq
        seen[seq] = (record.value, headers)
        if len(seen) == RECORDS:
            break
    consumer.commit()
    consumer.close()

    assert sorted(seen) == list(range(RECORDS))
    assert all(value == PAYLOAD and h["event-type"] == b"SmokeRecorded" for value, h in seen.values())


def test_restarted_consumer_resumes_from_the_committed_offset(kafka_bootstrap, new_topic):
    topic = new_topic()
    _produce_numbered(kafka_bootstrap, topic, RECORDS)
    group = f"smoke-resume-{uuid.uuid4().hex[:8]}"
    first_batch = 4_000

    first = _consumer(kafka_bootstrap, topic, group)
    before: set[int] = set()
    while len(before) < first_batch:
        batch = first.poll(timeout_ms=1_000, max_records=500)
        processed: dict[TopicPartition, int] = {}
        for partition, records in batch.items():
            for record in records:
                if len(before) == first_batch:
                    break
                before.add(int(dict(record.headers)["seq"]))
                processed[partition] = record.offset + 1
        # Commit exactly what was processed, as a handler does after its transaction committed.
        first.commit({tp: OffsetAndMetadata(at, "", -1) for tp, at in processed.items()})
    first.close()

    second = _consumer(kafka_bootstrap, topic, group)
    after = {int(dict(record.headers)["seq"]) for record in second}
    second.close()

    assert len(before) == first_batch
    assert before.isdisjoint(after), "the restarted consumer re-read records whose offsets were committed"
    assert before | after == set(range(RECORDS)), "records were lost across the consumer restart"


def test_aborted_transaction_is_invisible_to_read_committed_consumers(kafka_bootstrap, new_topic):
    topic = new_topic(partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"smoke-tx-{uuid.uuid4()}",
                             enable_idempotence=True, acks="all")
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(50):
        producer.send(topic, key=b"k", value=f"aborted-{i}".encode())
    producer.flush()
    producer.abort_transaction()
    producer.begin_transaction()
    for i in range(50):
        producer.send(topic, key=b"k", value=f"committed-{i}".encode())
    producer.commit_transaction()
    producer.close()

    def read(isolation: str) -> list[str]:
        consumer = _consumer(kafka_bootstrap, topic, f"smoke-{isolation}-{uuid.uuid4().hex[:8]}",
                             isolation_level=isolation)
        values = [record.value.decode() for record in consumer]
        consumer.close()
        return values

    committed_view = read("read_committed")
    uncommitted_view = read("read_uncommitted")

    assert committed_view == [f"committed-{i}" for i in range(50)]
    # The aborted records did reach the log: a read_uncommitted consumer sees them.
    assert [v for v in uncommitted_view if v.startswith("aborted-")] == [f"aborted-{i}" for i in range(50)]
