"""Topic names and their creation: one versioned events topic per producing service, one DLQ per consumer.

Every topic is part of the append-only log auditors replay, so each is created with infinite retention,
``cleanup.policy=delete`` (never compacted), no unclean leader election and the given
``min.insync.replicas``. An existing topic is accepted only if it says the same (a topic auto-created with
the broker's defaults would silently drop history after seven days).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource
from kafka.errors import TopicAlreadyExistsError
from kafka.errors import for_code as kafka_error_for_code

SERVICES = ("intake", "referral", "audit", "notify")
CHECKPOINT_TOPIC = "referralnet.audit.checkpoints.v1"

_LOG = logging.getLogger(__name__)


def events_topic(service: str) -> str:
    """The topic a service publishes its events to, e.g. ``referralnet.intake.events.v1``."""
    return f"referralnet.{service}.events.v1"


def dead_letter_topic(consumer: str) -> str:
    """A consumer's dead-letter topic, e.g. ``referralnet.referral-worker.dlq.v1``."""
    return f"referralnet.{consumer}.dlq.v1"


def network_topics(consumers: Iterable[str], services: Iterable[str] = SERVICES) -> list[str]:
    """Every topic of the network: each service's events topic, the audit checkpoints, a DLQ per consumer."""
    topics = [events_topic(service) for service in services] + [CHECKPOINT_TOPIC]
    topics += [dead_letter_topic(consumer) for consumer in consumers]
    return list(dict.fromkeys(topics))  # a consumer named twice gets one DLQ


def append_only_configs(min_insync_replicas: int) -> dict[str, str]:
    """The topic configs of an append-only log that loses nothing and keeps everything."""
    return {
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "cleanup.policy": "delete",
        "min.insync.replicas": str(min_insync_replicas),
        "unclean.leader.election.enable": "false",
    }


class TopicConfigError(RuntimeError):
    """An existing topic's configuration contradicts the append-only log (names topics and configs only)."""


@dataclass(frozen=True)
class EnsuredTopics:
    """What ``ensure_topics`` did: the topics it created and those that already existed (and were checked)."""

    created: tuple[str, ...]
    existing: tuple[str, ...]


def ensure_topics(bootstrap_servers: str, topics: Iterable[str], *, partitions: int, replication_factor: int,
                  min_insync_replicas: int, timeout_s: float = 30.0,
                  admin_config: Mapping[str, object] | None = None) -> EnsuredTopics:
    """Create the missing ``topics`` as append-only logs and check that the existing ones are too.

    Idempotent: running it again creates nothing and succeeds. Raises TopicConfigError when an existing
    topic has a different retention, cleanup policy, unclean election or min.insync.replicas, and
    kafka-python's errors when the cluster cannot be reached or refuses a topic.
    """
    names = list(dict.fromkeys(topics))
    if not names:
        return EnsuredTopics((), ())
    configs = append_only_configs(min_insync_replicas)
    timeout_ms = int(timeout_s * 1000)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="referralnet-topics",
                             request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms, **(admin_config or {}))
    try:
        request = {name: {"num_partitions": partitions, "replication_factor": replication_factor, "configs": configs}
                   for name in names}
        response = admin.create_topics(request, timeout_ms=timeout_ms, raise_errors=False)
        created, existing = _outcomes(response["topics"])
        admin.wait_for_topics(names, timeout_ms=timeout_ms)
        _check_existing(admin, existing, configs)
    finally:
        admin.close()
    _LOG.info("topics created=%s existing=%s", created, existing)
    return EnsuredTopics(tuple(created), tuple(existing))


def _outcomes(results: list[dict[str, object]]) -> tuple[list[str], list[str]]:
    created, existing = [], []
    for result in results:
        name, code = str(result["name"]), int(str(result["error_code"]))
        error = kafka_error_for_code(code)
        if code == 0:
            created.append(name)
        elif error is TopicAlreadyExistsError:
            existing.append(name)
        else:
            raise error(f"creating topic {name}: {result.get('error_message') or error.__name__}")
    return created, existing


def _check_existing(admin: KafkaAdminClient, existing: list[str], wanted: Mapping[str, str]) -> None:
    if not existing:
        return
    described = admin.describe_configs([ConfigResource("TOPIC", name, None) for name in existing],
                                       config_filter="all")["topic"]
    problems = []
    for name in existing:
        actual = {key: described[name].get(key, {}).get("value") for key in wanted}
        problems += [f"{name}: {key}={actual[key]} (wanted {value})"
                     for key, value in wanted.items() if actual[key] != value]
    if problems:
        msg = "existing topics are not append-only logs: " + "; ".join(problems)
        raise TopicConfigError(msg)
