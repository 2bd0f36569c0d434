"""Reading Kafka topics from their first offset to end offsets fixed when the read starts, with no group.

The auditor's replay must not depend on audit's database nor on any consumer group: the consumer joins
no group, commits nothing, creates no topic, assigns every partition of the topics itself, seeks to the
beginning and reads until its position reaches the end offset captured when the read began (records
produced afterwards are not read). It reads ``read_committed``, so aborted transactions never count.

Records reach the caller in batches (one partition's records in offset order per call) as the audit
service's own :class:`SourceRecord`, so the caller can verify a batch at a time; ``on_progress`` gets the
number of records read so far after every poll.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.audit.application.records import SourceRecord

Position = tuple[str, int, int]
"""Where a record is: ``(topic, partition, offset)``."""
PartitionKey = tuple[str, int]

# Throughput settings: big fetches, many records per poll (the replay verifies them in batches).
READ_DEFAULTS: Mapping[str, Any] = {
    "isolation_level": "read_committed",
    "max_poll_records": 5000,
    "fetch_max_bytes": 50 * 1024 * 1024,
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
    "request_timeout_ms": 30_000,
}


class LogReadError(Exception):
    """The log could not be read: no broker, a topic that does not exist, or no progress for too long."""


def position_of(record: SourceRecord) -> Position:
    """``(topic, partition, offset)`` of a record."""
    return (record.topic, record.partition, record.offset)


def position_name(position: Position) -> str:
    """``referralnet.intake.events.v1[2]@17``: how a record without an event id is named."""
    topic, partition, offset = position
    return f"{topic}[{partition}]@{offset}"


@dataclass(frozen=True)
class LogBounds:
    """What a read covered: each partition's first offset and the end offset fixed at the start."""

    start: Mapping[PartitionKey, int]
    end: Mapping[PartitionKey, int]

    @property
    def records(self) -> int:
        """How many offsets lie between the bounds (an upper bound on records: markers take offsets too)."""
        return sum(self.end[key] - self.start[key] for key in self.end)

    def holds(self, topic: str, partition: int, offset: int) -> bool:
        """True when ``offset`` of that partition lies within what was read."""
        key = (topic, partition)
        return key in self.end and self.start[key] <= offset < self.end[key]


BatchHandler = Callable[[Sequence[SourceRecord]], None]


class LogReader:
    """A group-less consumer for one replay; :meth:`bounds` then :meth:`read` any number of topic sets."""

    def __init__(self, bootstrap_servers: str, *, consumer_config: Mapping[str, Any] | None = None,
                 client_id: str = "referralnet-audit-replay", stall_timeout_s: float = 60.0,
                 connect_timeout_s: float = 15.0) -> None:
        """Connect to Kafka; LogReadError naming the bootstrap servers when no broker answers in time."""
        from kafka import KafkaConsumer  # noqa: PLC0415 (slow import)
        from kafka.errors import KafkaError  # noqa: PLC0415

        config: dict[str, Any] = {"bootstrap_servers": bootstrap_servers, "client_id": client_id, **READ_DEFAULTS,
                                  "bootstrap_timeout_ms": int(connect_timeout_s * 1000)}
        config.update(consumer_config or {})
        config.update(group_id=None, enable_auto_commit=False, allow_auto_create_topics=False)
        self._stall_timeout_s = stall_timeout_s
        try:
            self._consumer = KafkaConsumer(**config)
        except KafkaError as error:
            msg = f"cannot reach Kafka at {bootstrap_servers}: {type(error).__name__}: {error}"
            raise LogReadError(msg) from None

    def close(self) -> None:
        """Close the consumer."""
        self._consumer.close()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def existing_topics(self) -> set[str]:
        """Every topic the cluster lets this client see."""
        return set(self._consumer.topics())

    def bounds(self, topics: Iterable[str]) -> LogBounds:
        """Every partition of ``topics`` with its beginning and its end offset now; LogReadError for a missing topic."""
        from kafka.structs import TopicPartition  # noqa: PLC0415

        partitions: list[Any] = []
        for topic in dict.fromkeys(topics):
            numbers = self._consumer.partitions_for_topic(topic)
            if not numbers:
                msg = f"topic {topic} does not exist on this Kafka (or this client may not describe it)"
                raise LogReadError(msg)
            partitions.extend(TopicPartition(topic, number) for number in sorted(numbers))
        if not partitions:
            return LogBounds({}, {})
        start = self._consumer.beginning_offsets(partitions)
        end = self._consumer.end_offsets(partitions)
        return LogBounds({(tp.topic, tp.partition): start[tp] for tp in partitions},
                         {(tp.topic, tp.partition): end[tp] for tp in partitions})

    def read(self, bounds: LogBounds, on_batch: BatchHandler, on_progress: Callable[[int], None] | None = None,
             hold: Callable[[], Collection[PartitionKey]] | None = None) -> int:
        """Feed every record within ``bounds`` to ``on_batch`` (per partition, in offset order); the count read.

        ``hold``, asked after every poll, names partitions not to fetch until it no longer names them (the
        caller's buffer for them is full); when it names every partition still to read, none is held.
        LogReadError when no partition advances for the stall timeout.
        """
        from kafka.structs import TopicPartition  # noqa: PLC0415

        pending = {TopicPartition(topic, partition) for (topic, partition), end in bounds.end.items()
                   if end > bounds.start[(topic, partition)]}
        if not pending:
            return 0
        consumer = self._consumer
        consumer.assign(sorted(pending))
        for tp in pending:
            consumer.seek(tp, bounds.start[(tp.topic, tp.partition)])
        positions = {tp: bounds.start[(tp.topic, tp.partition)] for tp in pending}
        assigned = set(pending)
        read, last_progress = 0, time.monotonic()
        while pending:
            for tp, records in consumer.poll(timeout_ms=500).items():
                end = bounds.end[(tp.topic, tp.partition)]
                batch = [_record(record) for record in records if record.offset < end]
                if batch:
                    read += len(batch)
                    on_batch(batch)
            if on_progress is not None:
                on_progress(read)
            for tp in list(pending & assigned):
                position = consumer.position(tp)
                if position > positions[tp]:
                    positions[tp], last_progress = position, time.monotonic()
                if position >= bounds.end[(tp.topic, tp.partition)]:
                    pending.discard(tp)
            wanted = _unheld(pending, hold() if hold is not None else ())
            if wanted != assigned:
                consumer.assign(sorted(wanted))  # a partition kept keeps its position and its fetched data
                for tp in wanted - assigned:
                    consumer.seek(tp, positions[tp])
                assigned = wanted
            if pending and time.monotonic() - last_progress > self._stall_timeout_s:
                behind = ", ".join(f"{tp.topic}[{tp.partition}] at {positions[tp]} of "
                                   f"{bounds.end[(tp.topic, tp.partition)]}" for tp in sorted(pending))
                msg = f"no progress reading Kafka for {self._stall_timeout_s:.0f} s: {behind}"
                raise LogReadError(msg)
        consumer.unsubscribe()
        return read


def _unheld(pending: set[Any], held: Collection[PartitionKey]) -> set[Any]:
    """The partitions still to read that ``held`` does not name (all of them when it names them all).

    A held partition is left out of the assignment rather than paused: kafka-python 3.0.12 parks the data
    of a paused partition and, once any other partition's data was drained, never gives it back on
    resume nor fetches that partition again (the read would stall).
    """
    wanted = {tp for tp in pending if (tp.topic, tp.partition) not in held}
    return wanted or set(pending)


def _record(record: Any) -> SourceRecord:  # noqa: ANN401 -- kafka-python's ConsumerRecord is untyped
    headers = tuple((str(key), bytes(value or b"")) for key, value in (record.headers or ()))
    return SourceRecord(topic=record.topic, partition=record.partition, offset=record.offset, value=record.value,
                        headers=headers)
