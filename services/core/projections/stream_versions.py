"""StreamVersions: every stream's last sequence and event count, and event counts by type.

Built from headers alone (no keys needed), so any service or auditor can run it. It answers "how far
has this stream got" (the version a command handler expects) and "are the sequences gap-free" (an
audit check): an event whose sequence is not the previous one plus one is counted in
``out_of_sequence`` for its stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from services.core.envelope import SectionKind, VerifiedEnvelope
from services.core.projections.base import Projection


@dataclass(slots=True)
class StreamVersion:
    """What StreamVersions knows about one stream."""

    last_sequence: int = 0
    events: int = 0
    out_of_sequence: int = 0


class StreamVersions(Projection):
    """stream id -> last sequence, event count and out-of-sequence count; event type -> count."""

    name: ClassVar[str] = "stream-versions"
    version: ClassVar[int] = 1

    def __init__(self) -> None:
        self._streams: dict[str, StreamVersion] = {}
        self._types: dict[str, int] = {}

    def apply(self, event: VerifiedEnvelope, payloads: Mapping[SectionKind, bytes]) -> None:
        """Count the event against its stream and its type."""
        header = event.header
        stream = self._streams.get(header.stream_id)
        if stream is None:
            stream = self._streams[header.stream_id] = StreamVersion()
        if header.stream_sequence != stream.last_sequence + 1:
            stream.out_of_sequence += 1
        stream.last_sequence = max(stream.last_sequence, header.stream_sequence)
        stream.events += 1
        self._types[header.event_type] = self._types.get(header.event_type, 0) + 1

    def state(self) -> object:
        """``{"event_types": {type: n}, "streams": {id: {"events", "last_sequence", "out_of_sequence"}}}``."""
        streams = {stream_id: {"events": s.events, "last_sequence": s.last_sequence,
                               "out_of_sequence": s.out_of_sequence} for stream_id, s in self._streams.items()}
        return {"event_types": dict(self._types), "streams": streams}

    def reset(self) -> None:
        """Forget every stream and count."""
        self._streams.clear()
        self._types.clear()

    def last_sequence(self, stream_id: str) -> int:
        """The stream's last sequence seen, 0 for a stream never seen."""
        stream = self._streams.get(stream_id)
        return stream.last_sequence if stream is not None else 0

    def stream(self, stream_id: str) -> StreamVersion | None:
        """A copy of what is known about the stream, or None."""
        stream = self._streams.get(stream_id)
        return None if stream is None else StreamVersion(stream.last_sequence, stream.events, stream.out_of_sequence)

    def event_counts(self) -> dict[str, int]:
        """Events seen by type."""
        return dict(self._types)

    def __len__(self) -> int:
        """The number of streams seen."""
        return len(self._streams)
