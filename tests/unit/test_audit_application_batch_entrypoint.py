"""The audit worker's batch entrypoint, its rules without a broker: a failed batch is handed over again and only
then committed, a stop leaves it uncommitted, and a revocation commits or abandons the revoked partitions.

What is real: the entrypoint's own code (services/audit/batch_entrypoint.py). What is replaced: the nameko
container (it runs the worker at once, failing as told) and the KafkaConsumer (it records commits and
seeks); tests/integration/test_audit_worker.py runs the real ones.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from kafka.structs import TopicPartition

from services.audit.application.records import SourceRecord
from services.audit.batch_entrypoint import BatchConsumerEntrypoint, Subscription, _batch_of

FIRST, SECOND = TopicPartition("referralnet.intake.events.v1", 0), TopicPartition("referralnet.intake.events.v1", 1)


class FakeContainer:
    """Runs each spawned worker at once; ``outcomes`` says which raise (an exception) or succeed (None)."""

    def __init__(self, outcomes: list[BaseException | None]) -> None:
        self.config = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "AUDIT_WORKER_GROUP": "audit-worker"}
        self.outcomes = outcomes
        self.batches: list[list[SourceRecord]] = []

    def spawn_worker(self, _entrypoint: Any, args: tuple[Any, ...], _kwargs: dict[str, Any],
                     handle_result: Any) -> None:
        self.batches.append(args[0])
        outcome = self.outcomes.pop(0)
        handle_result(None, None, None if outcome is None else (type(outcome), outcome, None))


class FakeConsumer:
    """Records what the entrypoint commits and where it seeks."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned
        self.commits: list[dict[TopicPartition, int]] = []
        self.async_commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def commit(self, offsets: dict[TopicPartition, Any], timeout_ms: int) -> None:
        self.commits.append({partition: meta.offset for partition, meta in offsets.items()})

    async def commit_async(self, offsets: dict[TopicPartition, Any]) -> None:
        self.async_commits.append({partition: meta.offset for partition, meta in offsets.items()})

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))


def entrypoint(outcomes: list[BaseException | None], *, grace: float = 0.0) -> tuple[BatchConsumerEntrypoint,
                                                                                      FakeContainer, FakeConsumer]:
    made = BatchConsumerEntrypoint(subscription=lambda _config: Subscription(("referralnet.intake.events.v1",),
                                                                            "audit-worker", 10),
                                   backoff_seconds=0.001, revoke_grace_seconds=grace)
    container = FakeContainer(outcomes)
    made.container = container
    made.setup()
    consumer = FakeConsumer({FIRST, SECOND})
    made._consumer = consumer
    return made, container, consumer


def polled() -> dict[TopicPartition, list[Any]]:
    def record(partition: TopicPartition, offset: int) -> Any:
        return SimpleNamespace(topic=partition.topic, partition=partition.partition, offset=offset,
                               value=b"envelope", headers=[("event-id", b"x")])

    return {FIRST: [record(FIRST, 5), record(FIRST, 6)], SECOND: [record(SECOND, 40)]}


def test_a_batch_is_handed_over_in_poll_order_and_committed_after_the_last_record_of_each_partition():
    made, container, consumer = entrypoint([None])

    made._handle(_batch_of(polled()))

    [batch] = container.batches
    assert [(r.partition, r.offset, r.headers) for r in batch] == [(0, 5, (("event-id", b"x"),)),
                                                                   (0, 6, (("event-id", b"x"),)),
                                                                   (1, 40, (("event-id", b"x"),))]
    assert consumer.commits == [{FIRST: 7, SECOND: 41}]


def test_a_failed_batch_is_handed_over_again_until_it_succeeds_and_only_then_committed():
    made, container, consumer = entrypoint([RuntimeError("database down"), RuntimeError("still down"), None])

    made._handle(_batch_of(polled()))

    assert len(container.batches) == 3 and container.batches[0] == container.batches[2]
    assert consumer.commits == [{FIRST: 7, SECOND: 41}]
    assert made.stats["failed_attempts"] == 2 and made.stats["batches"] == 1


def test_a_stop_during_a_failing_batch_leaves_it_uncommitted_to_be_read_again():
    made, container, consumer = entrypoint([RuntimeError("database down")])
    made._stopping = True

    made._handle(_batch_of(polled()))

    assert len(container.batches) == 1 and consumer.commits == []


def test_a_revocation_after_the_batch_committed_commits_those_partitions_and_the_poller_the_rest():
    made, _, consumer = entrypoint([])
    batch = _batch_of(polled())
    batch.done.set()
    made._batch = batch

    asyncio.run(made.revoked([FIRST], commit=True))
    consumer.assigned = {SECOND}
    made._commit(batch)

    assert consumer.async_commits == [{FIRST: 7}]
    assert consumer.commits == [{SECOND: 41}]
    assert consumer.seeks == []


def test_a_revocation_before_the_batch_finished_seeks_back_and_drops_those_partitions_from_it():
    made, _, consumer = entrypoint([], grace=0.0)
    batch = _batch_of(polled())
    made._batch = batch

    asyncio.run(made.revoked([FIRST, TopicPartition("other", 0)], commit=True))

    assert consumer.seeks == [(FIRST, 5)] and consumer.async_commits == []
    assert [(r.partition, r.offset) for r in batch.remaining()] == [(1, 40)]
    batch.done.set()
    made._commit(batch)
    assert consumer.commits == [{SECOND: 41}]


def test_a_lost_partition_is_never_committed_and_a_revocation_outside_the_batch_changes_nothing():
    made, _, consumer = entrypoint([])
    batch = _batch_of(polled())
    batch.done.set()
    made._batch = batch

    asyncio.run(made.revoked([TopicPartition("other", 3)], commit=True))
    assert batch.abandoned == set()
    asyncio.run(made.revoked([SECOND], commit=False))

    assert consumer.async_commits == [] and batch.abandoned == {SECOND}
