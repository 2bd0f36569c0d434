"""What auditors ask the ledger (``referralnet.audit.v1.AuditService``): checkpoints, proofs, entries, reports.

Only organisations with the auditor or coordinator role may ask (anything else: PERMISSION_DENIED, the
same answer whatever was asked). Sizes default to the newest checkpoint's, so what an auditor gets is
always something a signed checkpoint vouches for; an explicit size may be any size the tree has reached.
Each call reads in its own short transaction; ``replay_log`` reads page by page, holding none between
pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.orm import Session

from services.audit.adapters.tree_store import SqlTree
from services.audit.application.compliance_report import ComplianceReporter
from services.audit.domain.checkpoint import Checkpoint, to_proto
from services.core.application import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.core.generated.referralnet.audit.v1 import audit_pb2 as api
from services.core.generated.referralnet.common.v1.vocabulary_pb2 import ORG_ROLE_AUDITOR, ORG_ROLE_COORDINATOR
from services.core.grpcedge.caller import Caller

AUDIT_ROLES = frozenset({ORG_ROLE_AUDITOR, ORG_ROLE_COORDINATOR})
MAX_REPLAY = 10_000
REPLAY_PAGE = 500
_EVENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SUBJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MAX_INDEX = 2**63 - 1  # the ledger's indexes are signed 64-bit integers in the database
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def require_auditor(caller: Caller) -> None:
    """PERMISSION_DENIED unless the caller audits or coordinates the network."""
    if caller.role not in AUDIT_ROLES:
        raise PermissionDenied(
            es="solo los equipos de auditoría y la coordinación de la red pueden consultar el registro de auditoría",
            en="only the network's auditors and coordinators may query the audit ledger")


def _no_checkpoint(field: str) -> FailedPrecondition:
    return FailedPrecondition(field=field, es="el registro aún no tiene ningún punto de control firmado",
                              en="the ledger has no signed checkpoint yet")


class AuditQueries:
    """The use cases of the audit edge, over the ledger's database."""

    def __init__(self, engine: sa.Engine, reporter: ComplianceReporter, *, tree: SqlTree | None = None,
                 page: int = REPLAY_PAGE) -> None:
        self._engine = engine
        self._reporter = reporter
        self._tree = tree or SqlTree()
        self._page = page

    def get_checkpoint(self, caller: Caller, request: api.GetCheckpointRequest) -> api.GetCheckpointResponse:
        """The newest checkpoint, or the one of exactly ``tree_size``; NOT_FOUND when there is none."""
        require_auditor(caller)
        if request.tree_size > MAX_INDEX:  # no tree is that large (and the database could not be asked)
            found = None
        else:
            with Session(self._engine) as session:
                found = (self._tree.checkpoint_of_size(session, request.tree_size) if request.tree_size
                         else self._tree.latest_checkpoint(session))
        if found is None and request.tree_size:
            raise NotFound(field="tree_size", es="no hay un punto de control de ese tamaño",
                           en="there is no checkpoint of that size")
        if found is None:
            raise NotFound(es="el registro aún no tiene ningún punto de control firmado",
                           en="the ledger has no signed checkpoint yet")
        return api.GetCheckpointResponse(checkpoint=to_proto(found))

    def inclusion_proof(self, caller: Caller,
                        request: api.GetInclusionProofRequest) -> api.GetInclusionProofResponse:
        """The audit path of an event's leaf in the tree of ``tree_size`` (default: the newest checkpoint's)."""
        require_auditor(caller)
        if not _EVENT_ID.fullmatch(request.event_id):
            raise InvalidArgument("event_id", es="debe ser un identificador de evento (UUID en minúsculas)",
                                  en="must be an event id (a lowercase UUID)")
        with Session(self._engine) as session:
            index = self._tree.leaf_index_of(session, request.event_id)
            if index is None:
                raise NotFound(field="event_id", es="ese evento no es (todavía) una hoja del registro",
                               en="that event is not a leaf of the ledger (yet)")
            size = self._size(session, request.tree_size, "tree_size")
            if index >= size:
                raise FailedPrecondition(
                    field="tree_size",
                    es=f"la hoja {index} es posterior al árbol de {size} hojas: pida un tamaño mayor "
                    "o espere al siguiente punto de control",
                    en=f"leaf {index} is past the tree of {size} leaves: ask for a larger size or wait for the next "
                    "checkpoint")
            [(_, leaf)] = self._tree.leaves(session, index, 1)
            return api.GetInclusionProofResponse(
                leaf_index=index, tree_size=size, leaf_input=leaf.leaf_input,
                audit_path=self._tree.inclusion_proof(session, index, size), root_hash=self._tree.root(session, size))

    def consistency_proof(self, caller: Caller,
                          request: api.GetConsistencyProofRequest) -> api.GetConsistencyProofResponse:
        """The proof that the tree of ``first_tree_size`` is a prefix of the one of ``second_tree_size``
        (default: the newest checkpoint's)."""
        require_auditor(caller)
        with Session(self._engine) as session:
            second = self._size(session, request.second_tree_size, "second_tree_size")
            first = request.first_tree_size
            if not 1 <= first <= second:
                raise InvalidArgument("first_tree_size", es=f"debe estar entre 1 y {second}",
                                      en=f"must be between 1 and {second}")
            return api.GetConsistencyProofResponse(
                first_tree_size=first, second_tree_size=second,
                proof=self._tree.consistency_proof(session, first, second),
                first_root_hash=self._tree.root(session, first), second_root_hash=self._tree.root(session, second))

    def replay_log(self, caller: Caller, request: api.ReplayLogRequest) -> Iterator[api.ReplayLogResponse]:
        """Ledger entries from ``start_index``, in leaf order: at most ``limit`` (<= 10,000; 0 means 10,000),
        up to the newest leaf. Checked now; the entries are read page by page as they are sent."""
        require_auditor(caller)
        if request.limit > MAX_REPLAY:
            raise InvalidArgument("limit", es=f"como máximo {MAX_REPLAY} entradas por llamada",
                                  en=f"at most {MAX_REPLAY} entries per call")
        if request.start_index > MAX_INDEX:
            raise InvalidArgument("start_index", es=f"como máximo {MAX_INDEX}", en=f"at most {MAX_INDEX}")
        return self._entries(request.start_index, request.limit or MAX_REPLAY)

    def _entries(self, start: int, limit: int) -> Iterator[api.ReplayLogResponse]:
        sent = 0
        while sent < limit:
            wanted = min(self._page, limit - sent)
            with Session(self._engine) as session:
                page = self._tree.leaves(session, start + sent, wanted)
            for index, leaf in page:
                yield api.ReplayLogResponse(
                    leaf_index=index, leaf_input=leaf.leaf_input, event_id=leaf.event_id, event_type=leaf.event_type,
                    stream_id=leaf.stream_id, stream_sequence=leaf.stream_sequence, producer_org=leaf.producer_org,
                    topic=leaf.topic, partition=leaf.partition, offset=leaf.offset,
                    occurred_at_unix_micros=leaf.occurred_at_us, envelope=leaf.envelope)
            sent += len(page)
            if len(page) < wanted:  # the newest leaf was reached
                return

    def compliance_report(self, caller: Caller,
                          request: api.ComplianceReportRequest) -> api.ComplianceReportResponse:
        """The compliance checks over the leaves of the newest checkpoint (see ComplianceReporter)."""
        require_auditor(caller)
        subject_id = request.subject_id or None
        if subject_id is not None and not _SUBJECT_ID.fullmatch(subject_id):
            raise InvalidArgument("subject_id", es="debe ser un identificador seudónimo de persona (sub-...)",
                                  en="must be a pseudonymous subject id (sub-...)")
        from_us = _micros(request.from_time, "from_time") if request.HasField("from_time") else None
        to_us = _micros(request.to_time, "to_time") if request.HasField("to_time") else None
        if from_us is not None and to_us is not None and to_us < from_us:
            raise InvalidArgument("to_time", es="no puede ser anterior a from_time", en="cannot be before from_time")
        checkpoint, result = self._reporter.report(subject_id, from_us, to_us)
        response = api.ComplianceReportResponse(
            events_checked=result.events_checked,
            violations=[api.Violation(check=v.check, detail=v.detail, event_ids=list(v.event_ids),
                                      subject_id=v.subject_id) for v in result.violations],
            disclosures=[api.Disclosure(subject_id=d.subject_id, kind=d.kind, recipient_org=d.recipient_org,
                                        purpose=d.purpose, category=d.category, consent_id=d.consent_id,
                                        at_unix_micros=d.at_us, event_id=d.event_id) for d in result.disclosures])
        if checkpoint is not None:
            response.checkpoint.CopyFrom(to_proto(checkpoint))
        return response

    def _size(self, session: Session, asked: int, field: str) -> int:
        """``asked`` when the tree reached it, else the newest checkpoint's size when ``asked`` is 0."""
        if asked:
            size = self._tree.size(session)
            if asked > size:
                raise FailedPrecondition(field=field, es=f"el árbol tiene {size} hojas",
                                         en=f"the tree has {size} leaves")
            return asked
        latest: Checkpoint | None = self._tree.latest_checkpoint(session)
        if latest is None:
            raise _no_checkpoint(field)
        return latest.tree_size



def _micros(stamp: Timestamp, field: str) -> int:
    """A timestamp in unix microseconds; INVALID_ARGUMENT outside google.protobuf.Timestamp's valid range."""
    if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 1_000_000_000):
        raise InvalidArgument(field, es="debe ser un instante válido (entre los años 1 y 9999)",
                              en="must be a valid instant (between the years 1 and 9999)")
    micros: int = stamp.ToMicroseconds()
    return micros
