"""ComplianceReport: the compliance checks, recomputed from the stored ledger each time they are asked for.

The leaves of the newest checkpoint (all the leaves when there is none yet) are read back in leaf order,
their envelopes verified again and their routing sections opened with the network routing keys (never a
case file), and fed to a fresh :class:`ComplianceChecker` with the stored rejections and dead letters:
the same checks, in the same code, as the auditor's CLI runs over Kafka. A subject's report replays only
the leaves indexed under that subject (every event of its streams names it).

Replaying everything per call is O(ledger) in time (verification dominates, some 10,000 leaves a second)
and fine at the network's volumes for now; a projection kept by the worker would make a period report
cheap when that stops being true.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.audit.adapters import custody_store as store
from services.audit.adapters.source import read_source_event
from services.audit.adapters.tree_store import LeafRecord, SqlTree
from services.audit.application.ledger import VerifyMany
from services.audit.domain.checkpoint import Checkpoint
from services.audit.domain.compliance import ComplianceChecker, ComplianceResult
from services.core.envelope import EnvelopeError, Opener
from services.core.events import UnprocessableEvent
from services.core.identity.directory import Directory
from services.core.keyvault.routing_keys import NetworkRoutingKeys

REPORT_PAGE = 500


class ComplianceReporter:
    """Replays the stored ledger through the compliance checks."""

    def __init__(self, engine: sa.Engine, directory: Directory, verify_many: VerifyMany,
                 routing_keys: NetworkRoutingKeys, *, tree: SqlTree | None = None, page: int = REPORT_PAGE) -> None:
        self._engine = engine
        self._directory = directory
        self._verify_many = verify_many
        self._keys = routing_keys
        self._tree = tree or SqlTree()
        self._page = page
        self._opener = Opener()

    def report(self, subject_id: str | None = None, from_us: int | None = None,
               to_us: int | None = None) -> tuple[Checkpoint | None, ComplianceResult]:
        """The newest checkpoint (None before the first) and the checks' result for the filter."""
        checker = ComplianceChecker.for_directory(self._directory)
        with Session(self._engine) as session:
            checkpoint = self._tree.latest_checkpoint(session)
            size = checkpoint.tree_size if checkpoint is not None else self._tree.size(session)
            indexes = store.subject_leaf_indexes(session, subject_id, size) if subject_id is not None else None
            rejections = store.load_rejections(session)
            dead_letters = store.load_dead_letters(session)
        for page in self._pages(size, indexes):
            self._observe(checker, page)
        for rejection in rejections:
            checker.observe_rejected(rejection.reason, event_id=rejection.event_id, topic=rejection.source_topic,
                                     partition=rejection.source_partition, offset=rejection.source_offset)
        for letter in dead_letters:
            checker.observe_dead_letter(
                letter.reason, event_id=letter.event_id, consumer=letter.consumer,
                topic=letter.original_topic or letter.source_topic,
                partition=letter.original_partition if letter.original_topic else letter.source_partition,
                offset=letter.original_offset if letter.original_topic else letter.source_offset,
                subject_id=letter.subject_id or "", at_us=letter.occurred_at_us)
        return checkpoint, checker.result(subject_id, from_us, to_us)

    def _pages(self, size: int, indexes: Sequence[int] | None) -> Iterable[list[LeafRecord]]:
        """The leaves to replay, a page (one short read) at a time."""
        if indexes is None:
            for start in range(0, size, self._page):
                with Session(self._engine) as session:
                    yield [leaf for _, leaf in self._tree.leaves(session, start, min(self._page, size - start))]
            return
        for start in range(0, len(indexes), self._page):
            with Session(self._engine) as session:
                yield [self._tree.leaves(session, index, 1)[0][1] for index in indexes[start:start + self._page]]

    def _observe(self, checker: ComplianceChecker, leaves: Sequence[LeafRecord]) -> None:
        results = self._verify_many([leaf.envelope for leaf in leaves])
        for leaf, result in zip(leaves, results, strict=True):
            topic, partition, offset = leaf.topic, leaf.partition, leaf.offset
            if isinstance(result, EnvelopeError):  # it verified when appended: the directory changed since
                checker.observe_rejected(result.reason, event_id=leaf.event_id, topic=topic, partition=partition,
                                         offset=offset)
                continue
            try:
                message = read_source_event(result, self._keys, self._opener)
            except (EnvelopeError, UnprocessableEvent) as error:
                message = None
                checker.observe_rejected(error.reason, event_id=leaf.event_id, topic=topic, partition=partition,
                                         offset=offset)
            checker.observe(result.header, message, topic=topic, partition=partition, offset=offset)
