"""What a replay found, as one value: :class:`AuditReport`, written as ``report.json`` by :func:`write_json`.

The report names events by id and records by ``topic[partition]@offset``, organisations and subjects by
their (pseudonymous) ids; it never holds a payload, a note or a case file. ``report.json`` has a fixed
top-level shape (``format`` names its version) so other tools can read it; ``report.html``
(:mod:`.report_html`) shows the same facts for people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from services.audit.replay.funnel import FunnelFigures

REPORT_FORMAT = "referralnet/audit-replay-report/v1"
EXIT_CLEAN, EXIT_VIOLATIONS, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class Finding:
    """One violation: which check, what is wrong (ids only), the events that show it, the subject if one."""

    check: str
    detail: str
    event_ids: tuple[str, ...] = ()
    subject_id: str = ""

    def as_dict(self) -> dict[str, object]:
        """The violation for report.json."""
        return {"check": self.check, "detail": self.detail, "event_ids": list(self.event_ids),
                "subject_id": self.subject_id}


@dataclass(frozen=True)
class CheckpointRow:
    """One checkpoint record of the chain as the report shows it."""

    where: str
    tree_size: int
    root_hash: str
    recomputed_root: str
    issued_at_us: int
    previous_tree_size: int
    runs: int
    leaves: int
    duplicates: int
    rejected: int
    in_chain: bool
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is wrong with it."""
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        """The checkpoint for report.json."""
        return {"where": self.where, "tree_size": self.tree_size, "root_hash": self.root_hash,
                "recomputed_root": self.recomputed_root, "issued_at": iso_time(self.issued_at_us),
                "issued_at_us": self.issued_at_us, "previous_tree_size": self.previous_tree_size, "runs": self.runs,
                "leaves": self.leaves, "duplicates": self.duplicates, "rejected": self.rejected,
                "in_chain": self.in_chain, "ok": self.ok, "problems": list(self.problems)}


@dataclass(frozen=True)
class TopicRow:
    """One topic read: its partitions, the records read and the offsets covered."""

    topic: str
    role: str  # "checkpoints", "events" or "dead letters"
    partitions: int
    records: int


@dataclass
class AuditReport:
    """Everything one replay found (see the module doc). ``violations`` empty means a clean log."""

    bootstrap: str
    network_id: str
    origin: str
    started_at_us: int
    topics: list[TopicRow] = field(default_factory=list)
    records_read: int = 0
    read_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    checkpoints: list[CheckpointRow] = field(default_factory=list)
    republished_checkpoints: int = 0
    tree_size: int = 0
    root_hash: str = ""
    duplicates: int = 0
    rejected: int = 0
    dead_letters: int = 0
    pending: int = 0
    pending_verified: int = 0
    pending_rejected: int = 0
    events_checked: int = 0
    violations: list[Finding] = field(default_factory=list)
    disclosures: Mapping[str, int] = field(default_factory=dict)
    funnel: FunnelFigures = field(default_factory=FunnelFigures)

    @property
    def clean(self) -> bool:
        """True when no check found anything wrong."""
        return not self.violations

    @property
    def exit_status(self) -> int:
        """0 when clean, 1 on any violation."""
        return EXIT_CLEAN if self.clean else EXIT_VIOLATIONS

    @property
    def records_per_second(self) -> float:
        """Source records read and verified per second of the read (connecting and checkpoints excluded)."""
        return self.records_read / self.read_seconds if self.read_seconds > 0 else 0.0

    @property
    def checkpoints_ok(self) -> int:
        """Checkpoints with no problem."""
        return sum(1 for row in self.checkpoints if row.ok)

    @property
    def disclosures_total(self) -> int:
        """Every disclosure (offers and key releases)."""
        return sum(self.disclosures.values())

    def violations_by_check(self) -> dict[str, int]:
        """How many violations each check found, by check name."""
        counts: dict[str, int] = {}
        for finding in self.violations:
            counts[finding.check] = counts.get(finding.check, 0) + 1
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict[str, object]:
        """The whole report as report.json holds it."""
        newest = next((row for row in reversed(self.checkpoints) if row.in_chain), None)
        return {
            "format": REPORT_FORMAT,
            "verdict": "clean" if self.clean else "violations",
            "exit_status": self.exit_status,
            "generated_at": iso_time(self.started_at_us),
            "bootstrap": self.bootstrap,
            "network_id": self.network_id,
            "origin": self.origin,
            "topics": [{"topic": row.topic, "role": row.role, "partitions": row.partitions, "records": row.records}
                       for row in self.topics],
            "records_read": self.records_read,
            "rate": {"records_per_s": round(self.records_per_second, 1), "read_seconds": round(self.read_seconds, 3),
                     "elapsed_seconds": round(self.elapsed_seconds, 3)},
            "checkpoints_checked": len(self.checkpoints),
            "checkpoints_ok": self.checkpoints_ok,
            "checkpoints_republished": self.republished_checkpoints,
            "newest_checkpoint": newest.as_dict() if newest else None,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "leaves": self.tree_size,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "dead_letters": self.dead_letters,
            "pending": {"records": self.pending, "verified": self.pending_verified, "rejected": self.pending_rejected},
            "events_checked": self.events_checked,
            "violations_count": len(self.violations),
            "violations_by_check": self.violations_by_check(),
            "violations": [finding.as_dict() for finding in self.violations],
            "disclosures_count": self.disclosures_total,
            "disclosures_by_kind": dict(sorted(self.disclosures.items())),
            "funnel": {"by_service_type": [row.as_dict() for row in self.funnel.by_service_type],
                       "by_region": [row.as_dict() for row in self.funnel.by_region],
                       "time_to_acceptance": self.funnel.acceptance_summary()},
            "checkpoints": [row.as_dict() for row in self.checkpoints],
        }


def write_json(report: AuditReport, path: Path) -> Path:
    """Write ``report.json`` (UTF-8, indented, trailing newline) and return its path."""
    path.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def iso_time(unix_micros: int) -> str:
    """``2027-01-15T08:00:00.000000Z`` (UTC), or an empty string for 0."""
    if unix_micros <= 0:
        return ""
    moment = datetime.fromtimestamp(unix_micros / 1e6, tz=UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
