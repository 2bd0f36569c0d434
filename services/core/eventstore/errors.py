"""What can go wrong appending to or reading from the event store."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base class of the event store's errors."""


class ConcurrencyError(EventStoreError):
    """Another writer appended to the stream first: reload the stream and decide again."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        found = "a concurrent append" if actual_version is None else f"version {actual_version}"
        super().__init__(f"stream {stream_id}: expected version {expected_version}, found {found}; "
                         "reload the stream and retry the command")
