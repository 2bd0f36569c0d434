"""Rebuilding a projection from Kafka: every partition of the topics from its first offset to a fixed end.

The read is bounded by offsets, never by a quiet period: the end offsets are taken when the rebuild
starts (or given as ``until``, e.g. the ``end_offsets`` of an earlier report, to rebuild exactly the
same log prefix), and each partition is read until the consumer's position reaches its end. Records
produced after that are left for the live consumer. The consumer joins no group, commits nothing and
creates no topic (``group_id``, auto-commit and topic auto-creation are forced off), reads
``read_committed`` so aborted transactions never reach a projection, and is closed before returning.

Per-partition order is kept (each partition's records are fed in offset order); the interleaving of
partitions is whatever the broker returns, which projections must not depend on (see :mod:`.base`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from services.core.envelope import Opener, Verifier
from services.core.projections.replay import KeySource, P, Replayer, ReplayReport

_LOG = logging.getLogger(__name__)
Offsets = Mapping[tuple[str, int], int]


class ReplayError(Exception):
    """The log could not be read to its end: a missing topic, a bad bound, or no progress for too long."""


def rebuild_from_topic(
    projection: P, bootstrap_servers: str | Sequence[str], topics: Sequence[str], verifier: Verifier, *,
    opener: Opener | None = None, keys: KeySource | None = None, until: Offsets | None = None,
    reset: bool = True, consumer_config: Mapping[str, Any] | None = None, stall_timeout_s: float = 60.0,
    progress: Callable[[ReplayReport], None] | None = None,
) -> tuple[P, ReplayReport]:
    """Reset ``projection`` (unless ``reset`` is False) and apply every event of ``topics`` up to the bound.

    ``consumer_config`` adds kafka-python settings (TLS for mTLS, ``max_poll_records``...). ``progress`` is
    called with the report after every batch. ReplayError when a topic is missing, ``until`` names an
    offset beyond a partition's end or misses a partition, or no partition advances for
    ``stall_timeout_s`` seconds.
    """
    if reset:
        projection.reset()
    replayer = Replayer(projection, verifier, opener=opener, keys=keys)
    started = time.monotonic()
    consumer = KafkaConsumer(**_config(bootstrap_servers, projection.name, consumer_config))
    try:
        partitions = _partitions(consumer, topics)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        start = consumer.beginning_offsets(partitions)
        end = _bounds(partitions, consumer.end_offsets(partitions), until)
        report = replayer.report
        report.start_offsets = {(tp.topic, tp.partition): start[tp] for tp in partitions}
        report.end_offsets = {(tp.topic, tp.partition): end[tp] for tp in partitions}
        _read(consumer, replayer, start, end, stall_timeout_s=stall_timeout_s, progress=progress)
    finally:
        consumer.close()
    report.elapsed_s = time.monotonic() - started
    _LOG.info("rebuilt %s: %d records, %d applied, %d duplicates, %d rejected in %.1f s", projection.name,
              report.records_read, report.applied, report.duplicates_dropped, report.rejected_total,
              report.elapsed_s)
    return projection, report


def _config(bootstrap_servers: str | Sequence[str], name: str, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap_servers": bootstrap_servers, "client_id": f"referralnet-replay-{name}",
                              "isolation_level": "read_committed", "max_poll_records": 1000}
    config.update(extra or {})
    config.update(group_id=None, enable_auto_commit=False, allow_auto_create_topics=False)
    return config


def _partitions(consumer: KafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    partitions: list[TopicPartition] = []
    for topic in topics:
        numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            msg = f"topic {topic} does not exist (or this client may not describe it)"
            raise ReplayError(msg)
        partitions.extend(TopicPartition(topic, number) for number in sorted(numbers))
    return partitions


def _bounds(partitions: list[TopicPartition], latest: Mapping[TopicPartition, int],
            until: Offsets | None) -> dict[TopicPartition, int]:
    if until is None:
        return {tp: latest[tp] for tp in partitions}
    bounds = {}
    for tp in partitions:
        bound = until.get((tp.topic, tp.partition))
        if bound is None:
            msg = f"until: no end offset for {tp.topic}[{tp.partition}]"
            raise ReplayError(msg)
        if bound > latest[tp]:
            msg = f"until: {tp.topic}[{tp.partition}] ends at {latest[tp]}, before the requested {bound}"
            raise ReplayError(msg)
        bounds[tp] = bound
    return bounds


def _read(consumer: KafkaConsumer, replayer: Replayer[P], start: Mapping[TopicPartition, int],
          end: Mapping[TopicPartition, int], *, stall_timeout_s: float,
          progress: Callable[[ReplayReport], None] | None) -> None:
    pending = {tp for tp in end if end[tp] > start[tp]}
    consumer.pause(*(tp for tp in end if tp not in pending))
    positions = dict(start)
    last_progress = time.monotonic()
    while pending:
        for tp, records in consumer.poll(timeout_ms=500).items():
            in_bound = [record for record in records if record.offset < end[tp]]
            if in_bound:
                replayer.feed(in_bound)
        if progress is not None:
            progress(replayer.report)
        for tp in list(pending):
            position = consumer.position(tp)
            if position > positions[tp]:
                positions[tp], last_progress = position, time.monotonic()
            if position >= end[tp]:
                pending.discard(tp)
                consumer.pause(tp)
        if pending and time.monotonic() - last_progress > stall_timeout_s:
            behind = ", ".join(f"{tp.topic}[{tp.partition}] at {positions[tp]} of {end[tp]}" for tp in sorted(pending))
            msg = f"no progress for {stall_timeout_s:.0f} s: {behind}"
            raise ReplayError(msg)
