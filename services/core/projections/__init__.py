"""Projections: in-memory read models folded from verified events, droppable and rebuildable from Kafka.

- :mod:`.base`: the :class:`Projection` contract (pure ``apply``, ``state``, ``reset``, ``state_hash``).
- :mod:`.canonical`: the canonical form of a state and the state hash over it.
- :mod:`.replay`: :class:`Replayer`, verify -> dedupe by event id -> open -> apply, with a report.
- :mod:`.rebuild`: :func:`rebuild_from_topic`, the bounded group-less read of Kafka from offset 0.
- :mod:`.stream_versions`: :class:`StreamVersions`, a projection from headers alone.
"""

from services.core.projections.base import Projection, UnusableEvent
from services.core.projections.canonical import CanonicalFormError, canonical_json, state_hash
from services.core.projections.rebuild import ReplayError, rebuild_from_topic
from services.core.projections.replay import KeySource, Rejection, Replayer, ReplayReport
from services.core.projections.stream_versions import StreamVersion, StreamVersions

__all__ = [
    "CanonicalFormError", "KeySource", "Projection", "Rejection", "ReplayError", "ReplayReport", "Replayer",
    "StreamVersion", "StreamVersions", "UnusableEvent", "canonical_json", "rebuild_from_topic", "state_hash",
]
