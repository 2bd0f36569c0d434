"""The Kafka producer the outbox relay publishes with: idempotent, acks=all, order-keeping, no auto-created topics.

Only the calls the relay makes are typed (``Producer``), so a nameko host or a test can hand the relay any
object with the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from kafka import KafkaProducer

# What the relay's guarantees rest on; an override that weakens them is refused.
REQUIRED_CONFIG: dict[str, Any] = {
    "enable_idempotence": True,  # a retried batch is written once; with <= 5 in flight, order is kept
    "acks": "all",  # acknowledged = on every in-sync replica (min.insync.replicas of the topic)
    "allow_auto_create_topics": False,  # a missing topic fails the send; it is never made with broker defaults
}
MAX_IN_FLIGHT_KEEPING_ORDER = 5

DEFAULT_CONFIG: dict[str, Any] = {
    "client_id": "referralnet-outbox-relay",
    "max_in_flight_requests_per_connection": MAX_IN_FLIGHT_KEEPING_ORDER,
    "linger_ms": 5,
    "batch_size": 256 * 1024,  # envelopes are ciphertext: no compression, big batches instead
    "request_timeout_ms": 10_000,
    "delivery_timeout_ms": 30_000,  # every send resolves (acknowledged or failed) within this
    "max_block_ms": 10_000,  # a send() waiting for metadata (unknown topic, no broker) gives up after this
    "bootstrap_timeout_ms": 10_000,
}


class SendFuture(Protocol):
    """What ``send`` returns: ``get`` gives the record's metadata or raises why it was not written."""

    def get(self, timeout: float | None = None) -> object: ...


class Producer(Protocol):
    """The part of kafka-python's KafkaProducer the relay uses."""

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> SendFuture: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


ProducerFactory = Callable[[], Producer]


def producer_config(bootstrap_servers: str, **overrides: object) -> dict[str, Any]:
    """KafkaProducer keyword arguments: the defaults, then ``overrides`` (TLS, timeouts...), then the required."""
    refused = {key: value for key, value in overrides.items()
               if key in REQUIRED_CONFIG and value != REQUIRED_CONFIG[key]}
    in_flight = overrides.get("max_in_flight_requests_per_connection", MAX_IN_FLIGHT_KEEPING_ORDER)
    if not isinstance(in_flight, int) or in_flight > MAX_IN_FLIGHT_KEEPING_ORDER:
        refused["max_in_flight_requests_per_connection"] = in_flight
    if refused:
        msg = f"producer config: {sorted(refused)} would break idempotence, durability or order"
        raise ValueError(msg)
    return {**DEFAULT_CONFIG, **overrides, **REQUIRED_CONFIG, "bootstrap_servers": bootstrap_servers}


def kafka_producer_factory(bootstrap_servers: str, **overrides: object) -> ProducerFactory:
    """A factory of KafkaProducers configured by ``producer_config`` (checked now, connected when called)."""
    config = producer_config(bootstrap_servers, **overrides)

    def create() -> Producer:
        return cast(Producer, KafkaProducer(**config))

    return create
