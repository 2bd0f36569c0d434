"""The consuming worker of ``bench.pipeline``: a nameko service that opens each event's routing section.

Run by the benchmark as ``nameko run --config <file> bench._pipeline_worker``; the topic, group and the
data keys it holds come from the environment (``PIPELINE_TOPIC``, ``PIPELINE_KEYS_FILE``). The runtime's
dedupe claim (``processed_events``, with ``processed_at_us``) is what the benchmark reads back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider

from services.core.envelope import SectionKind, UnknownKeyError
from services.core.keyvault.keys import DataKey
from services.core.runtime import ConsumedEvent, UnitOfWork, consume

TOPIC = os.environ.get("PIPELINE_TOPIC", "referralnet.bench.events.v1")


class HeldKeys(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """The data keys this worker holds, read once from ``PIPELINE_KEYS_FILE`` (JSON key id -> hex)."""

    def setup(self) -> None:
        path = os.environ.get("PIPELINE_KEYS_FILE", "")
        self.keys = {key_id: bytes.fromhex(value)
                     for key_id, value in (json.loads(Path(path).read_text()) if path else {}).items()}

    def get_dependency(self, worker_ctx: Any) -> HeldKeys:  # noqa: ANN401 -- nameko's WorkerContext
        return self

    def key(self, key_id: str) -> DataKey:
        """The held key named ``key_id``; UnknownKeyError for any other."""
        if key_id not in self.keys:
            raise UnknownKeyError(f"data key {key_id} is not held by this worker")
        return DataKey(key_id, self.keys[key_id])


class PipelineWorker:
    """Handles every event of the benchmark topic: open the routing section, nothing else."""

    name = "pipeline-bench"
    session = UnitOfWork()
    keys = HeldKeys()

    @consume(topics=[TOPIC], group_id="pipeline-bench")
    def handle(self, event: ConsumedEvent) -> None:
        """Open the routing section (the work every routing consumer does); the claim is the effect."""
        event.open(SectionKind.ROUTING, self.keys)
