"""The intake worker: ``nameko run --config <yaml> services.intake.worker`` (service ``intake-worker``).

Consumes referral's events (``referralnet.referral.events.v1``, group ``intake-worker``) to keep
``intake_handoffs``, which ReleaseKey checks. Each event is verified by the entrypoint, must be signed by
the referral service, is opened with the network routing keys and decoded with referral's catalogue: an
unknown type or version, or another producer, goes to the dead-letter topic. Config keys:
``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL`` (intake's database, migrated by the edge) and ``NETWORK_DIR``
(services/core/runtime/config.py). Import it only from code that ``nameko run`` loads.

``INTAKE_WORKER_GROUP`` (environment, read at import like every ``@consume`` argument) renames the consumer
group, and with it the dedupe consumer and the dead-letter topic (``referralnet.<group>.dlq.v1``): only for
a second intake sharing one Kafka cluster (a test run beside a running network, a staging copy).
"""

from __future__ import annotations

import os
from typing import Any

from nameko.extensions import DependencyProvider

from services.core.envelope import SectionKind
from services.core.keyvault.routing_keys import NetworkRoutingKeys, load_routing_keys
from services.core.messaging.topics import events_topic
from services.core.runtime import ConsumedEvent, TracingProvider, UnitOfWork, consume
from services.core.runtime import config as cfg
from services.intake.adapters.referral_events import check_producer, decode_referral_event
from services.intake.application.handoffs import apply_referral_event

WORKER = "intake-worker"
GROUP = os.environ.get("INTAKE_WORKER_GROUP", "").strip() or WORKER
REFERRAL_TOPIC = events_topic("referral")


class RoutingKeys(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """The network routing keys from ``NETWORK_DIR``/routing (loaded once; every version opens what it sealed)."""

    def setup(self) -> None:
        """Load the keys; a missing or loose key file stops the worker at start, naming the file."""
        self.keys = load_routing_keys(cfg.network_dir(self.container.config))

    def get_dependency(self, worker_ctx: Any) -> NetworkRoutingKeys:  # noqa: ANN401 -- nameko's WorkerContext
        """The keys (read-only, shared by the workers)."""
        return self.keys


class IntakeWorker:
    """Applies referral's handoff events to intake_handoffs, once each (the dedupe claim is in the session)."""

    name = WORKER
    session = UnitOfWork()
    routing_keys = RoutingKeys()
    tracer = TracingProvider()

    @consume(topics=[REFERRAL_TOPIC], group_id=GROUP)
    def on_referral_event(self, event: ConsumedEvent) -> None:
        """Decode the event and apply it in this record's transaction."""
        check_producer(event.header)
        payload = event.open(SectionKind.ROUTING, self.routing_keys)
        apply_referral_event(self.session, decode_referral_event(event.header, payload))
