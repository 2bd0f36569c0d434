"""What a projection is: a pure fold over verified events, whose state can be hashed and thrown away.

A projection is domain code: it never touches Kafka, a database or a key. It receives each event as
the verified envelope (trusted header, canonical hash) and the plaintext of the sections it declared
in ``sections`` (opened by whoever feeds it), and keeps state in memory.

The contract that makes "drop it and rebuild it from the log" give the same state hash:

- ``apply`` is a deterministic function of the state and the event: no clock, no randomness, no I/O.
- It may rely on the order of events within a stream (one stream lives in one Kafka partition, in
  sequence order) but never on the order between streams, partitions or topics, which a replay does
  not reproduce.
- It sees each event once: the feeder drops duplicates by event id before calling it.
- An event it cannot use (an unknown payload version, say) raises :class:`UnusableEvent` before any
  change to the state; the feeder counts it by reason and goes on.
- ``state()`` returns the whole state in the canonical form of :mod:`.canonical`; ``state_hash`` hashes
  it. Bump ``version`` whenever ``apply`` changes meaning, so old and new hashes never compare equal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

from services.core.envelope import SectionKind, VerifiedEnvelope
from services.core.projections.canonical import state_hash


class UnusableEvent(Exception):
    """Raised by ``apply`` for a verified event the projection cannot use; ``reason`` is a snake_case code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class Projection(ABC):
    """Base class of every projection (see the module docstring for the contract)."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    sections: ClassVar[frozenset[SectionKind]] = frozenset()  # the sections apply() needs opened

    @abstractmethod
    def apply(self, event: VerifiedEnvelope, payloads: Mapping[SectionKind, bytes]) -> None:
        """Fold one verified event into the state; ``payloads`` holds the opened sections it carries."""

    @abstractmethod
    def state(self) -> object:
        """The whole state, in the canonical form (dicts with str keys, lists, sets, ints, str, bools)."""

    @abstractmethod
    def reset(self) -> None:
        """Forget everything: back to the state before the first event."""

    def state_hash(self) -> str:
        """Lowercase hex SHA-256 of the canonical state, bound to this projection's name and version."""
        return state_hash(self.name, self.version, self.state())
