"""The local three-node cluster is real replicated Kafka: acks=all writes go on with one node down."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from deploy.local.kafka import KafkaCluster

pytestmark = pytest.mark.integration

TOPIC = "cluster.smoke.v1"


def _produce(bootstrap: str, start: int, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                             retries=20, request_timeout_ms=15_000, delivery_timeout_ms=60_000)
    futures = [producer.send(TOPIC, key=str(i % 5).encode(), value=str(i).encode())
               for i in range(start, start + count)]
    producer.flush(timeout=60)
    for future in futures:
        future.get(timeout=30)
    producer.close()


def test_cluster_survives_one_node_down_with_min_insync_replicas_2(kafka_cluster3: KafkaCluster):
    bootstrap = kafka_cluster3.bootstrap_servers
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(TOPIC, 3, 3, topic_configs={"min.insync.replicas": "2"})])
    admin.wait_for_topics([TOPIC], timeout_ms=30_000)
    described = admin.describe_topics([TOPIC])[0]
    admin.close()
    assert all(len(p["replica_nodes"]) == 3 for p in described["partitions"])

    _produce(bootstrap, 0, 1_000)
    kafka_cluster3.stop_node(2)
    assert len(kafka_cluster3.running_nodes()) == 2
    _produce(bootstrap, 1_000, 1_000)

    consumer = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=5_000)
    values = sorted(int(record.value) for record in consumer)
    consumer.close()
    assert values == list(range(2_000))

    kafka_cluster3.restart_node(2)
    assert len(kafka_cluster3.running_nodes()) == 3
