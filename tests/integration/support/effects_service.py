"""A test service run with ``nameko run``: consumes one topic and records each event's effect.

In the handler's transaction (which already holds the dedupe claim) it opens the routing section with the
keys it was given, adds one to a per-event counter (``effects.applied``: exactly-once means 1) and
appends the application to ``applications`` (whose ids give the order streams were applied in).

Knobs, from the environment because the decorator's topic is read at import time:
``EFFECTS_TOPIC``, ``EFFECTS_GROUP``, ``EFFECTS_KEYS_FILE`` (JSON ``{key_id: hex}``) and
``EFFECTS_CRASH_AFTER``: SIGKILL this process right after that many handler transactions committed,
before their offsets are (the fault hook lives here, in a subclass, not in the production entrypoint).
Events of type ``AlwaysFails`` make the handler raise, to exercise retries and the dead-letter topic.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.core.envelope import SectionKind, UnknownKeyError
from services.core.keyvault.keys import DataKey
from services.core.runtime import ConsumedEvent, KafkaConsumerEntrypoint, TracingProvider, UnitOfWork, consume

TOPIC = os.environ.get("EFFECTS_TOPIC", "referralnet.effects.events.v1")
GROUP = os.environ.get("EFFECTS_GROUP", "effects-worker")
FAILING_TYPE = "AlwaysFails"

METADATA = sa.MetaData()
effects = sa.Table(
    "effects", METADATA,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("stream_id", sa.String(128), nullable=False),
    sa.Column("stream_sequence", sa.BigInteger, nullable=False),
    sa.Column("region", sa.String(16), nullable=False),
    sa.Column("applied", sa.Integer, nullable=False),
)
applications = sa.Table(
    "applications", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("stream_id", sa.String(128), nullable=False),
    sa.Column("stream_sequence", sa.BigInteger, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
)


class KeyRing:
    """The data keys this service holds (a DataKeySource): UnknownKeyError for any other."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = keys

    def key(self, key_id: str) -> DataKey:
        try:
            return DataKey(key_id, self._keys[key_id])
        except KeyError:
            raise UnknownKeyError(f"data key {key_id} is not held by this service") from None

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        return cls({key_id: bytes.fromhex(value) for key_id, value in json.loads(path.read_text()).items()})


class HeldKeys(DependencyProvider):  # type: ignore[misc]  # nameko is untyped
    """Injects the KeyRing read from ``EFFECTS_KEYS_FILE``."""

    def setup(self) -> None:
        path = os.environ.get("EFFECTS_KEYS_FILE")
        self.ring = KeyRing.from_file(Path(path)) if path else KeyRing({})

    def get_dependency(self, worker_ctx: Any) -> KeyRing:
        return self.ring


class CrashingConsumer(KafkaConsumerEntrypoint):
    """The production entrypoint, plus the fault hook: SIGKILL after N committed handler transactions."""

    crash_after = int(os.environ.get("EFFECTS_CRASH_AFTER", "0"))
    committed = 0

    def handle_result(self, item: Any, worker_ctx: Any, result: object, exc_info: Any) -> tuple[object, Any]:
        result, exc_info = super().handle_result(item, worker_ctx, result, exc_info)
        if exc_info is None and self.crash_after:
            CrashingConsumer.committed += 1
            if CrashingConsumer.committed >= self.crash_after:
                os.kill(os.getpid(), signal.SIGKILL)  # the transaction committed; its offset never will be
        return result, exc_info


def apply_effect(session: Session, event: ConsumedEvent, region: str) -> None:
    """Count the event's effect once more and log the application (the body of the handler)."""
    header = event.header
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = insert(effects).values(event_id=header.event_id, stream_id=header.stream_id,
                                    stream_sequence=header.stream_sequence, region=region, applied=1)
    session.execute(upsert.on_conflict_do_update(index_elements=["event_id"],
                                                 set_={"applied": effects.c.applied + 1}))
    session.execute(sa.insert(applications).values(event_id=header.event_id, stream_id=header.stream_id,
                                                   stream_sequence=header.stream_sequence, pid=os.getpid()))


class EffectsService:
    name = "effects"
    session = UnitOfWork()
    keys = HeldKeys()
    tracer = TracingProvider()

    @consume(topics=[TOPIC], group_id=GROUP, entrypoint=CrashingConsumer, backoff_seconds=0.05)
    def handle(self, event: ConsumedEvent) -> None:
        if event.header.event_type == FAILING_TYPE:
            raise RuntimeError("synthetic handler failure")
        routing = json.loads(event.open(SectionKind.ROUTING, self.keys))
        apply_effect(self.session, event, routing["region"])
