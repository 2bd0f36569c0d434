"""One auditor's replay, start to finish: trust, read, verify, rebuild, check, report.

:func:`run_replay` is what ``referralnet audit replay`` runs (and what tests and the benchmark call):

1. load the directory, checking its signature with the CA the auditor trusts (``--ca``, else the network
   folder's), and the network routing keys (auditors hold them, ADR 11);
2. read the checkpoint topic from offset 0 to its end now, then every source topic (the ones asked for
   and any a verified checkpoint's runs name) from offset 0 to their ends now, with no consumer group,
   verifying and decoding each batch as it comes (a progress bar shows the rate);
3. rebuild the tree from the checkpoints' runs as the records arrive, and check every checkpoint
   (:mod:`.ledger`): each leaf goes to the ComplianceChecker (the same checks the audit service runs) as
   the walk reaches it and is then dropped, so memory does not hold the log;
4. then feed the checker the pending tail's verified events (once per event id), and every record that did
   not verify or decode and every dead letter;
5. write ``report.json`` and ``report.html`` into the output folder.

Problems of the auditor's own making (no broker, a missing topic, an untrusted directory, an unusable
output folder) raise :class:`ReplayUsageError`; what the log shows wrong becomes violations in the report.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

from services.audit.adapters.source import DEAD_LETTER_TOPICS, SOURCE_TOPICS
from services.audit.application.ledger import DUPLICATE_EVENT_ID
from services.audit.application.records import SourceRecord
from services.audit.domain.checkpoint import CheckpointError, checkpoint_origin, verify_checkpoint
from services.audit.domain.compliance import ComplianceChecker, Violation
from services.audit.replay.examine import Examined, Examiner
from services.audit.replay.funnel import FunnelBuilder
from services.audit.replay.ledger import CHECKPOINT_INCONSISTENT, LedgerReplay, LedgerReplayer, checkpoint_of
from services.audit.replay.log_reader import LogBounds, LogReader, LogReadError, PartitionKey, position_name
from services.audit.replay.report import AuditReport, CheckpointRow, Finding, TopicRow, write_json
from services.audit.replay.report_html import write_html
from services.core.envelope import Verifier, now_micros
from services.core.identity.directory import Directory
from services.core.keyvault.routing_keys import NetworkRoutingKeys
from services.core.messaging.topics import CHECKPOINT_TOPIC

DEFAULT_SOURCE_TOPICS = SOURCE_TOPICS
"""The events topics the audit worker reads by default: intake's, referral's and notify's."""
DEFAULT_DEAD_LETTER_TOPICS = DEAD_LETTER_TOPICS
"""The dead-letter topics the audit worker accounts for by default: intake-, referral- and notify-worker's."""
DEAD_LETTER_TOPIC = re.compile(r"referralnet\.(?P<consumer>.+)\.dlq\.v\d+")
"""A dead-letter topic's name (``dead_letter_topic(consumer)``): its records are accounted for, never leaves."""


class ReplayUsageError(Exception):
    """The replay could not run (exit status 2): the message says what to fix."""


@dataclass(frozen=True)
class ReplayOptions:
    """What to replay, from where, trusting what, and where the reports go."""

    bootstrap: str
    network_dir: Path
    out_dir: Path
    ca_path: Path | None = None
    source_topics: Sequence[str] = DEFAULT_SOURCE_TOPICS
    dead_letter_topics: Sequence[str] = DEFAULT_DEAD_LETTER_TOPICS
    checkpoint_topic: str = CHECKPOINT_TOPIC
    consumer_config: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True
    stall_timeout_s: float = 60.0
    connect_timeout_s: float = 15.0


@dataclass(frozen=True)
class Trust:
    """What the auditor verifies with: the CA-checked directory and the network routing keys."""

    directory: Directory
    routing_keys: NetworkRoutingKeys


@dataclass
class ReplayRun:
    """The outcome of :func:`run_replay`: the report and where it was written (plus the raw ledger)."""

    report: AuditReport
    json_path: Path
    html_path: Path
    ledger: LedgerReplay


def load_trust(network_dir: Path, ca_path: Path | None) -> Trust:
    """The directory (its CA signature checked against ``ca_path`` or the folder's CA) and the routing keys."""
    from cryptography import x509  # noqa: PLC0415

    from services.core.identity.errors import IdentityError  # noqa: PLC0415
    from services.core.identity.keystore import load_directory  # noqa: PLC0415
    from services.core.keyvault.routing_keys import load_routing_keys  # noqa: PLC0415

    if not Path(network_dir).is_dir():
        raise ReplayUsageError(f"--network {network_dir}: no such folder (a network folder holds directory.json, "
                               "its CA signature and routing/nrk-<n>.key)")
    try:
        ca = x509.load_pem_x509_certificate(Path(ca_path).read_bytes()) if ca_path else None
    except (OSError, ValueError) as error:
        raise ReplayUsageError(f"--ca {ca_path}: not a readable PEM certificate ({error})") from None
    try:
        directory = load_directory(network_dir, ca_certificate=ca)
        routing_keys = load_routing_keys(network_dir)
    except (IdentityError, OSError, ValueError) as error:
        raise ReplayUsageError(f"--network {network_dir}: {error}") from None
    return Trust(directory, routing_keys)


def is_dead_letter_topic(topic: str) -> bool:
    """True for a dead-letter topic's name (one of the workers' or any ``referralnet.<consumer>.dlq.v<n>``)."""
    return topic in DEAD_LETTER_TOPICS or DEAD_LETTER_TOPIC.fullmatch(topic) is not None


def run_replay(options: ReplayOptions, *, stream: TextIO | None = None) -> ReplayRun:
    """Replay, check and write both reports (see the module doc); ReplayUsageError when it cannot run."""
    started, started_us = time.monotonic(), now_micros()
    out_dir = _output_folder(options.out_dir)
    trust = load_trust(options.network_dir, options.ca_path)
    verifier = Verifier(trust.directory)
    try:
        with _reader(options) as reader:
            checkpoint_bounds = _bounds(reader, [options.checkpoint_topic])
            checkpoint_records: list[SourceRecord] = []
            _read(reader, checkpoint_bounds, checkpoint_records.extend, options=options, stream=stream)
            named = _run_topics(checkpoint_records, trust, reader.existing_topics())
            topics = list(dict.fromkeys([*options.source_topics, *options.dead_letter_topics, *named]))
            dead_letter_topics = frozenset(options.dead_letter_topics) | {
                topic for topic in options.source_topics if is_dead_letter_topic(topic)}
            source_bounds = _bounds(reader, topics)
            examiner = Examiner(verifier, trust.routing_keys, dead_letter_topics)
            checker, funnel = ComplianceChecker.for_directory(trust.directory), FunnelBuilder()
            feed = CheckerFeed(checker, funnel)
            replayer = LedgerReplayer(checkpoint_records, source_bounds, trust.directory,
                                      origin=checkpoint_origin(trust.directory.network_id), on_leaf=feed.observe_leaf)
            tally = _Tally()

            def take(batch: Sequence[SourceRecord]) -> None:
                entries = examiner.examine(batch)
                tally.add(entries)
                replayer.take(entries)

            read_started = time.monotonic()
            records = _read(reader, source_bounds, take, options=options, stream=stream, total=source_bounds.records,
                            hold=replayer.held)
            read_seconds = time.monotonic() - read_started
    finally:
        verifier.close()
    ledger = replayer.finish()
    report = AuditReport(bootstrap=options.bootstrap, network_id=trust.directory.network_id,
                         origin=checkpoint_origin(trust.directory.network_id), started_at_us=started_us,
                         records_read=records, read_seconds=read_seconds)
    report.topics = _topic_rows(checkpoint_bounds, checkpoint_records, source_bounds, tally.per_topic,
                                checkpoint_topic=options.checkpoint_topic, dead_letter_topics=dead_letter_topics)
    _fill_ledger(report, ledger, tally)
    for check in ledger.problems:
        checker.observe_violation(Violation(CHECKPOINT_INCONSISTENT, f"{check.name}: {'; '.join(check.problems)}"))
    for entry in ledger.pending:
        if entry.verified:
            feed.observe_once(entry, ledger.leaf_inputs)
    for entry in tally.others:
        feed.account(entry)
    _report_compliance(report, checker, funnel)
    report.elapsed_seconds = time.monotonic() - started
    json_path = write_json(report, out_dir / "report.json")
    html_path = write_html(report, out_dir / "report.html")
    return ReplayRun(report, json_path, html_path, ledger)


@dataclass
class _Tally:
    """What the reports count of the records read, and the few the checker hears about after the leaves."""

    per_topic: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    dead_letters: int = 0
    others: list[Examined] = field(default_factory=list)

    def add(self, entries: Iterable[Examined]) -> None:
        for entry in entries:
            topic = entry.position[0]
            self.per_topic[topic] = self.per_topic.get(topic, 0) + 1
            self.rejected += not entry.verified
            self.dead_letters += entry.dead_letter is not None
            if not entry.verified or entry.dead_letter is not None:
                self.others.append(entry)


def _output_folder(path: Path) -> Path:
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReplayUsageError(f"--out {folder}: cannot create the report folder ({error.strerror})") from None
    if not folder.is_dir():
        raise ReplayUsageError(f"--out {folder}: exists and is not a folder")
    return folder


def _reader(options: ReplayOptions) -> LogReader:
    try:
        return LogReader(options.bootstrap, consumer_config=options.consumer_config,
                         stall_timeout_s=options.stall_timeout_s, connect_timeout_s=options.connect_timeout_s)
    except LogReadError as error:
        raise ReplayUsageError(str(error)) from None


def _bounds(reader: LogReader, topics: Iterable[str]) -> LogBounds:
    from kafka.errors import KafkaError  # noqa: PLC0415

    try:
        return reader.bounds(topics)
    except LogReadError as error:
        raise ReplayUsageError(str(error)) from None
    except KafkaError as error:
        raise ReplayUsageError(f"Kafka did not answer: {type(error).__name__}: {error}") from None


def _read(reader: LogReader, bounds: LogBounds, on_batch: Callable[[Sequence[SourceRecord]], None], *,
          options: ReplayOptions, stream: TextIO | None, total: int | None = None,
          hold: Callable[[], Collection[PartitionKey]] | None = None) -> int:
    """Read within ``bounds``; a progress bar with the rate when ``total`` is given and progress is on."""
    from kafka.errors import KafkaError  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    show = options.progress and total is not None
    with tqdm(total=total, desc="replaying", unit="rec", unit_scale=True, disable=not show, file=stream or sys.stderr,
              mininterval=0.5, dynamic_ncols=True) as bar:
        def progress(count: int) -> None:
            bar.update(count - bar.n)

        try:
            return reader.read(bounds, on_batch, progress, hold)
        except LogReadError as error:
            raise ReplayUsageError(str(error)) from None
        except KafkaError as error:
            raise ReplayUsageError(f"Kafka failed while reading: {type(error).__name__}: {error}") from None


def _run_topics(records: Iterable[SourceRecord], trust: Trust, existing: set[str]) -> list[str]:
    """Topics named by the runs of checkpoints that verify (and exist): the replay must read them too."""
    named: dict[str, None] = {}
    for record in records:
        try:
            checkpoint = checkpoint_of(record)
            verify_checkpoint(checkpoint, trust.directory, origin=checkpoint_origin(trust.directory.network_id))
        except CheckpointError:
            continue  # reported by the ledger replay
        named.update((run.topic, None) for run in checkpoint.runs)
    return [topic for topic in named if topic in existing]


def _topic_rows(checkpoint_bounds: LogBounds, checkpoints: Sequence[SourceRecord], source_bounds: LogBounds,
                counts: Mapping[str, int], *, checkpoint_topic: str,
                dead_letter_topics: frozenset[str]) -> list[TopicRow]:
    rows = [TopicRow(checkpoint_topic, "checkpoints", len(checkpoint_bounds.end), len(checkpoints))]
    for topic in dict.fromkeys(topic for topic, _ in source_bounds.end):
        partitions = sum(1 for name, _ in source_bounds.end if name == topic)
        role = "dead letters" if topic in dead_letter_topics else "events"
        rows.append(TopicRow(topic, role, partitions, counts.get(topic, 0)))
    return rows


def _fill_ledger(report: AuditReport, ledger: LedgerReplay, tally: _Tally) -> None:
    report.checkpoints = [CheckpointRow(
        where=position_name(check.position), tree_size=check.tree_size, root_hash=check.root_hash.hex(),
        recomputed_root=check.recomputed_root.hex(), issued_at_us=check.issued_at_us,
        previous_tree_size=check.previous_tree_size, runs=check.runs, leaves=check.leaves,
        duplicates=check.duplicates, rejected=check.rejected, in_chain=check.in_chain,
        problems=tuple(check.problems)) for check in ledger.checkpoints]
    report.republished_checkpoints = ledger.republished
    report.tree_size, report.root_hash = ledger.tree_size, ledger.root.hex()
    report.duplicates = ledger.duplicates
    report.rejected = tally.rejected
    report.dead_letters = tally.dead_letters
    report.pending = len(ledger.pending)
    report.pending_verified = sum(1 for entry in ledger.pending if entry.verified)
    report.pending_rejected = report.pending - report.pending_verified


def _report_compliance(report: AuditReport, checker: ComplianceChecker, funnel: FunnelBuilder) -> None:
    result = checker.result()
    report.violations = [Finding(violation.check, violation.detail, tuple(violation.event_ids), violation.subject_id)
                         for violation in result.violations]
    report.events_checked = result.events_checked
    kinds: dict[str, int] = {}
    for disclosure in result.disclosures:
        kinds[disclosure.kind] = kinds.get(disclosure.kind, 0) + 1
    report.disclosures = kinds
    report.funnel = funnel.figures()


class CheckerFeed:
    """Feeds the compliance checker as the audit service feeds its own (see :func:`feed_checker`)."""

    def __init__(self, checker: ComplianceChecker, funnel: FunnelBuilder | None = None) -> None:
        self._checker = checker
        self._funnel = funnel
        self._seen: dict[str, bytes] = {}

    def observe_leaf(self, entry: Examined) -> None:
        """A leaf, in leaf order (the ledger makes an event id a leaf once: no duplicate check here)."""
        self._observe(entry)

    def observe_once(self, entry: Examined, leaf_inputs: Mapping[str, bytes] = MappingProxyType({})) -> None:
        """A verified record observed once per event id, among ``leaf_inputs`` and what this feed observed once.

        A second, different envelope under an event id already observed is rejected as ``duplicate_event_id``;
        the same envelope again changes nothing.
        """
        assert entry.event_id is not None and entry.leaf_input is not None  # noqa: S101
        known = leaf_inputs.get(entry.event_id) or self._seen.get(entry.event_id)
        if known is not None:
            if known != entry.leaf_input:
                topic, partition, offset = entry.position
                self._checker.observe_rejected(DUPLICATE_EVENT_ID, event_id=entry.event_id, topic=topic,
                                               partition=partition, offset=offset)
            return
        self._seen[entry.event_id] = entry.leaf_input
        self._observe(entry)

    def account(self, entry: Examined) -> None:
        """A dead letter (with its original coordinates when its headers give them) or a record that did not verify."""
        topic, partition, offset = entry.position
        letter = entry.dead_letter
        if letter is None:
            self._checker.observe_rejected(entry.problem or "unverified", event_id=entry.event_id, topic=topic,
                                           partition=partition, offset=offset)
            return
        known_origin = bool(letter.original_topic)
        self._checker.observe_dead_letter(
            letter.reason, event_id=entry.event_id, consumer=letter.consumer,
            topic=letter.original_topic if known_origin else topic,
            partition=letter.original_partition if known_origin else partition,
            offset=letter.original_offset if known_origin else offset, subject_id=entry.subject_id,
            at_us=entry.header.occurred_at_unix_micros if entry.header is not None else None)

    def _observe(self, entry: Examined) -> None:
        topic, partition, offset = entry.position
        assert entry.event_id is not None and entry.header is not None  # noqa: S101
        if entry.message is None:
            self._checker.observe_rejected(entry.undecodable or "undecodable", event_id=entry.event_id, topic=topic,
                                           partition=partition, offset=offset)
        self._checker.observe(entry.header, entry.message, topic=topic, partition=partition, offset=offset)
        if self._funnel is not None and entry.message is not None:
            self._funnel.add(entry.message)


def feed_checker(checker: ComplianceChecker, leaves: Iterable[Examined], tail: Iterable[Examined],
                 others: Iterable[Examined], funnel: FunnelBuilder | None = None) -> None:
    """Feed the compliance checker as the audit service feeds its own, plus the pending tail.

    ``leaves`` (in leaf order) and then the verified records of ``tail`` (the source records no checkpoint
    covers yet) are observed once per event id with their decoded payload (None, plus a rejection, when it
    would not open or decode); a second, different envelope under an event id already observed is
    rejected as ``duplicate_event_id``. Of ``others``, a dead letter is accounted for as such (with its
    original coordinates when its headers give them) and a source record that did not verify is rejected
    with its reason, named by the event id it claims or by its position.
    """
    feed = CheckerFeed(checker, funnel)
    for entry in (*leaves, *(entry for entry in tail if entry.verified)):
        feed.observe_once(entry)
    for entry in others:
        feed.account(entry)
