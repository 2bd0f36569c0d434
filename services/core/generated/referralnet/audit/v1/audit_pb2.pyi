import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LeafRun(_message.Message):
    __slots__ = ("topic", "partition", "first_offset", "last_offset")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    FIRST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    LAST_OFFSET_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., first_offset: _Optional[int] = ..., last_offset: _Optional[int] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("origin", "tree_size", "root_hash", "issued_at_unix_micros", "previous_tree_size", "previous_checkpoint_hash", "runs", "signing_key_id", "signature")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CHECKPOINT_HASH_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    tree_size: int
    root_hash: bytes
    issued_at_unix_micros: int
    previous_tree_size: int
    previous_checkpoint_hash: bytes
    runs: _containers.RepeatedCompositeFieldContainer[LeafRun]
    signing_key_id: str
    signature: bytes
    def __init__(self, origin: _Optional[str] = ..., tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., issued_at_unix_micros: _Optional[int] = ..., previous_tree_size: _Optional[int] = ..., previous_checkpoint_hash: _Optional[bytes] = ..., runs: _Optional[_Iterable[_Union[LeafRun, _Mapping]]] = ..., signing_key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("tree_size",)
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    def __init__(self, tree_size: _Optional[int] = ...) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: Checkpoint
    def __init__(self, checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("event_id", "tree_size")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    tree_size: int
    def __init__(self, event_id: _Optional[str] = ..., tree_size: _Optional[int] = ...) -> None: ...

class GetInclusionProofResponse(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "leaf_input", "audit_path", "root_hash")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEAF_INPUT_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PATH_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    leaf_input: bytes
    audit_path: _containers.RepeatedScalarFieldContainer[bytes]
    root_hash: bytes
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., leaf_input: _Optional[bytes] = ..., audit_path: _Optional[_Iterable[bytes]] = ..., root_hash: _Optional[bytes] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("first_tree_size", "second_tree_size")
    FIRST_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    first_tree_size: int
    second_tree_size: int
    def __init__(self, first_tree_size: _Optional[int] = ..., second_tree_size: _Optional[int] = ...) -> None: ...

class GetConsistencyProofResponse(_message.Message):
    __slots__ = ("first_tree_size", "second_tree_size", "proof", "first_root_hash", "second_root_hash")
    FIRST_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    FIRST_ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    SECOND_ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    first_tree_size: int
    second_tree_size: int
    proof: _containers.RepeatedScalarFieldContainer[bytes]
    first_root_hash: bytes
    second_root_hash: bytes
    def __init__(self, first_tree_size: _Optional[int] = ..., second_tree_size: _Optional[int] = ..., proof: _Optional[_Iterable[bytes]] = ..., first_root_hash: _Optional[bytes] = ..., second_root_hash: _Optional[bytes] = ...) -> None: ...

class ReplayLogRequest(_message.Message):
    __slots__ = ("start_index", "limit")
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    start_index: int
    limit: int
    def __init__(self, start_index: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReplayLogResponse(_message.Message):
    __slots__ = ("leaf_index", "leaf_input", "event_id", "event_type", "stream_id", "stream_sequence", "producer_org", "topic", "partition", "offset", "occurred_at_unix_micros", "envelope")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_INPUT_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ORG_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    leaf_input: bytes
    event_id: str
    event_type: str
    stream_id: str
    stream_sequence: int
    producer_org: str
    topic: str
    partition: int
    offset: int
    occurred_at_unix_micros: int
    envelope: bytes
    def __init__(self, leaf_index: _Optional[int] = ..., leaf_input: _Optional[bytes] = ..., event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., stream_id: _Optional[str] = ..., stream_sequence: _Optional[int] = ..., producer_org: _Optional[str] = ..., topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., occurred_at_unix_micros: _Optional[int] = ..., envelope: _Optional[bytes] = ...) -> None: ...

class ComplianceReportRequest(_message.Message):
    __slots__ = ("from_time", "to_time", "subject_id")
    FROM_TIME_FIELD_NUMBER: _ClassVar[int]
    TO_TIME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    from_time: _timestamp_pb2.Timestamp
    to_time: _timestamp_pb2.Timestamp
    subject_id: str
    def __init__(self, from_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., to_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subject_id: _Optional[str] = ...) -> None: ...

class Violation(_message.Message):
    __slots__ = ("check", "detail", "event_ids", "subject_id")
    CHECK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    check: str
    detail: str
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    subject_id: str
    def __init__(self, check: _Optional[str] = ..., detail: _Optional[str] = ..., event_ids: _Optional[_Iterable[str]] = ..., subject_id: _Optional[str] = ...) -> None: ...

class Disclosure(_message.Message):
    __slots__ = ("subject_id", "kind", "recipient_org", "purpose", "category", "consent_id", "at_unix_micros", "event_id")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_ORG_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    kind: str
    recipient_org: str
    purpose: str
    category: str
    consent_id: str
    at_unix_micros: int
    event_id: str
    def __init__(self, subject_id: _Optional[str] = ..., kind: _Optional[str] = ..., recipient_org: _Optional[str] = ..., purpose: _Optional[str] = ..., category: _Optional[str] = ..., consent_id: _Optional[str] = ..., at_unix_micros: _Optional[int] = ..., event_id: _Optional[str] = ...) -> None: ...

class ComplianceReportResponse(_message.Message):
    __slots__ = ("events_checked", "violations", "disclosures", "checkpoint")
    EVENTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    DISCLOSURES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    events_checked: int
    violations: _containers.RepeatedCompositeFieldContainer[Violation]
    disclosures: _containers.RepeatedCompositeFieldContainer[Disclosure]
    checkpoint: Checkpoint
    def __init__(self, events_checked: _Optional[int] = ..., violations: _Optional[_Iterable[_Union[Violation, _Mapping]]] = ..., disclosures: _Optional[_Iterable[_Union[Disclosure, _Mapping]]] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ...) -> None: ...
