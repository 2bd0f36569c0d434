"""Raw kafka-python produce and consume rates of 1 KiB records on the local broker.

The ceiling every later figure is compared with: no envelope, no database, only the client and the
broker. Produce uses the settings the services use (idempotent, acks=all); consume reads the topic back
from offset 0 in one consumer.

    python -m bench.kafka_raw [--records N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from bench.report import report
from deploy.local.stack import running_kafka

RECORD_BYTES = 1024
PARTITIONS = 3


def produce(bootstrap: str, topic: str, records: int) -> float:
    """Send ``records`` 1 KiB records and wait for every acknowledgement; return records per second."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                             linger_ms=5, batch_size=256 * 1024, compression_type=None)
    payload = os.urandom(RECORD_BYTES)
    started = time.perf_counter()
    for i in range(records):
        producer.send(topic, key=str(i % 1000).encode(), value=payload)
    producer.flush(timeout=300)
    elapsed = time.perf_counter() - started
    producer.close()
    return records / elapsed


def consume(bootstrap: str, topic: str, records: int) -> float:
    """Read ``records`` records back from offset 0; return records per second."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False, fetch_max_bytes=50 * 1024 * 1024,
                             max_partition_fetch_bytes=8 * 1024 * 1024, max_poll_records=5000)
    consumer.poll(timeout_ms=0)  # join and fetch metadata before the clock starts
    seen = 0
    started = time.perf_counter()
    deadline = started + 600
    while seen < records and time.perf_counter() < deadline:
        for batch in consumer.poll(timeout_ms=1000).values():
            seen += len(batch)
    elapsed = time.perf_counter() - started
    consumer.close()
    if seen < records:
        msg = f"consumed only {seen} of {records} records within 600 s"
        raise RuntimeError(msg)
    return seen / elapsed


def run(records: int) -> dict[str, float]:
    """Start (or reuse) Kafka, measure, stop; return the figures."""
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp, running_kafka(Path(tmp)) as bootstrap:
        topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        admin.wait_for_topics([topic], timeout_ms=30_000)
        try:
            produce_rate = produce(bootstrap, topic, records)
            consume_rate = consume(bootstrap, topic, records)
        finally:
            admin.delete_topics([topic])
            admin.close()
    mib = RECORD_BYTES / (1024 * 1024)
    return {
        "raw_produce_per_s": round(produce_rate),
        "raw_consume_per_s": round(consume_rate),
        "raw_produce_mib_per_s": round(produce_rate * mib, 1),
        "raw_consume_mib_per_s": round(consume_rate * mib, 1),
        "raw_records": records,
        "raw_record_bytes": RECORD_BYTES,
    }


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    report("kafka_raw", run(args.records))


if __name__ == "__main__":
    main()
