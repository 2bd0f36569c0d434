"""What can go wrong appending to or reading from the event store."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base class of the event store's errors."""


class ConcurrencyError(EventStoreError):
    """Another writer appended to the stream first: reload the stream and decide again.

    ``actual_version`` is the version found by the check before writing, or None when the conflict showed up
    later, at the unique (stream, sequence) index: another transaction wrote the same sequence first.
    """

    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        found = "a concurrent append" if actual_version is None else f"version {actual_version}"
        super().__init__(f"stream {stream_id}: expected version {expected_version}, found {found}; "
                         "reload the stream and retry the command")


class DuplicateEventError(EventStoreError):
    """An event with this id is already stored: the command ran before (retrying it would not help)."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"event {event_id} is already in the event store; it was appended earlier")
