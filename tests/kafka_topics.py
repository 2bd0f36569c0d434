"""Throwaway topics for tests that need a fresh one on the session's broker."""

from __future__ import annotations

import uuid

from kafka import KafkaAdminClient
from kafka.admin import NewTopic


class TopicFactory:
    """Creates uniquely named topics (``<prefix>.<random>``) and deletes them all on :meth:`close`."""

    def __init__(self, bootstrap_servers: str, prefix: str) -> None:
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=f"{prefix}-admin")
        self._prefix = prefix
        self._created: list[str] = []

    def __call__(self, partitions: int = 3, replicas: int = 1, configs: dict[str, str] | None = None) -> str:
        name = f"{self._prefix}.{uuid.uuid4().hex[:12]}"
        self._admin.create_topics([NewTopic(name, partitions, replicas, topic_configs=configs or {})])
        self._admin.wait_for_topics([name], timeout_ms=30_000)
        self._created.append(name)
        return name

    def close(self) -> None:
        """Delete every topic made here and close the admin client."""
        if self._created:
            self._admin.delete_topics(self._created)
        self._admin.close()
