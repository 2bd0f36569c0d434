"""The nameko runtime of the event workers: a Kafka consumer entrypoint, dead letters, dependency providers.

A worker service reads like::

    class ReferralWorker:
        name = "referral-worker"
        session = UnitOfWork()
        events = EventStoreProvider()
        tracer = TracingProvider()

        @consume(topics=[events_topic("intake")], group_id="referral-worker")
        def on_intake_event(self, event: ConsumedEvent) -> None:
            ...  # self.session is this record's transaction; the dedupe claim is already in it

and runs with ``nameko run --config worker.yaml services.referral.worker`` (config keys: ``config.py``).
Import it only from code that ``nameko run`` loads: kafka must be imported after eventlet's monkey-patching.
See docs/adr/0008-nameko-kafka-runtime.md.
"""

from services.core.events.errors import UnprocessableEvent
from services.core.runtime.dead_letter import DeadLetter, dead_letter_headers
from services.core.runtime.delivery import ConsumedEvent
from services.core.runtime.dependencies import (
    EventStoreProvider,
    KeyVaultProvider,
    Settlement,
    TracingProvider,
    UnitOfWork,
)
from services.core.runtime.kafka_entrypoint import KafkaConsumerEntrypoint, consume

__all__ = [
    "ConsumedEvent", "DeadLetter", "EventStoreProvider", "KafkaConsumerEntrypoint", "KeyVaultProvider", "Settlement",
    "TracingProvider", "UnitOfWork", "UnprocessableEvent", "consume", "dead_letter_headers",
]
