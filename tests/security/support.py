"""Helpers of the security suite: raw reads of every Kafka record, byte scans for canaries, raw produce.

Nothing here is faked: the reads go to the broker with kafka-python (every topic, internal ones included,
every partition from offset 0, uncommitted records too), the scans read files byte for byte.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


@dataclass(frozen=True)
class RawRecord:
    """One Kafka record as anybody with broker access reads it: coordinates, key, value, headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        """A header's value as text (None when absent)."""
        return next((value.decode(errors="replace") for key, value in self.headers if key == name), None)

    def blobs(self) -> list[bytes]:
        """Every byte the record carries: key, value, header names and values."""
        found = [self.key or b"", self.value or b""]
        for key, value in self.headers:
            found += [key.encode(), value or b""]
        return found


def read_everything(bootstrap: str, topics: Sequence[str] | None = None, *, timeout_s: float = 60.0,
                    ) -> list[RawRecord]:
    """Every record of every topic (or of ``topics``), internal topics included, from offset 0 to the end now.

    ``read_uncommitted``: an aborted or open transaction's records are read too (they sit on the broker).
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             isolation_level="read_uncommitted", exclude_internal_topics=False,
                             consumer_timeout_ms=1000)
    try:
        names = sorted(topics if topics is not None else all_topics(bootstrap))
        partitions = [TopicPartition(topic, p) for topic in names
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[RawRecord] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"reading {len(partitions)} partitions took over {timeout_s:.0f}s"
            for batch in consumer.poll(timeout_ms=500).values():
                for record in batch:
                    records.append(RawRecord(record.topic, record.partition, record.offset, record.key,
                                             record.value, tuple(record.headers or ())))
        return records
    finally:
        consumer.close()


def produce(bootstrap: str, topic: str, value: bytes, *, key: bytes | None = None,
            headers: Iterable[tuple[str, bytes]] = (), partition: int | None = None) -> tuple[int, int]:
    """Produce one record straight to the broker, as someone with broker access could; (partition, offset)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        metadata = producer.send(topic, value=value, key=key, headers=list(headers),
                                 partition=partition).get(timeout=30)
    finally:
        producer.close(timeout=10)
    return metadata.partition, metadata.offset


def encodings(canary: str) -> list[bytes]:
    """The byte forms a plaintext canary could take: UTF-8 (as protobuf, JSON, logs and SQLite hold text),
    lower-cased and upper-cased, and UTF-16 (little and big endian)."""
    forms = {canary, canary.lower(), canary.upper()}
    found: list[bytes] = []
    for form in sorted(forms):
        found += [form.encode(), form.encode("utf-16-le"), form.encode("utf-16-be")]
    return found


def leaks(data: bytes, canaries: Sequence[str]) -> list[str]:
    """The canaries present in ``data`` (any of their :func:`encodings`, ASCII case-insensitively)."""
    lowered = data.lower()
    return [canary for canary in canaries if any(form.lower() in lowered for form in encodings(canary))]


def files_under(folder: Path, patterns: Sequence[str] = ("*",)) -> list[Path]:
    """Every regular file under ``folder`` matching one of ``patterns`` (recursively), sorted."""
    return sorted({path for pattern in patterns for path in folder.rglob(pattern) if path.is_file()})


def lag(bootstrap: str, groups: Sequence[str]) -> dict[str, int]:
    """Records not yet committed by each consumer group, over the topics it has committed offsets for."""
    from kafka import KafkaAdminClient  # noqa: PLC0415 (slow import)

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        behind: dict[str, int] = {}
        for group in groups:
            committed = admin.list_group_offsets({group: None}).get(group, {})
            topics = {tp.topic for tp in committed}
            partitions = [TopicPartition(topic, p) for topic in sorted(topics)
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
            end = consumer.end_offsets(partitions) if partitions else {}
            behind[group] = sum(end[tp] - (committed[tp].offset if tp in committed else 0) for tp in partitions)
        return behind
    finally:
        consumer.close()
        admin.close()


def wait_settled(bootstrap: str, groups: Sequence[str], timeout_s: float = 60.0, quiet_s: float = 3.0) -> None:
    """Wait until no group lags and the topics' end offsets stayed the same for ``quiet_s`` (bounded)."""
    deadline = time.monotonic() + timeout_s
    stable_since: float | None = None
    last: dict[TopicPartition, int] | None = None
    while True:
        ends = end_offsets(bootstrap)
        behind = lag(bootstrap, groups)
        now = time.monotonic()
        if any(behind.values()) or ends != last:
            stable_since, last = None, ends
        elif stable_since is None:
            stable_since = now
        elif now - stable_since >= quiet_s:
            return
        assert now < deadline, f"the network did not settle within {timeout_s:.0f}s (lag {behind})"
        time.sleep(0.5)


def end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    """The end offset of every partition of every topic (internal ones excluded: they move on their own)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for topic in sorted(consumer.topics())
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return dict(consumer.end_offsets(partitions)) if partitions else {}
    finally:
        consumer.close()


def all_topics(bootstrap: str) -> list[str]:
    """Every topic of the cluster, internal ones (``__consumer_offsets``...) included."""
    from kafka import KafkaAdminClient  # noqa: PLC0415 (slow import)

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return sorted(admin.list_topics())
    finally:
        admin.close()
