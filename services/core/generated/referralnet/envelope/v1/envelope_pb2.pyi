from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SectionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SECTION_KIND_UNSPECIFIED: _ClassVar[SectionKind]
    SECTION_KIND_ROUTING: _ClassVar[SectionKind]
    SECTION_KIND_CASE_FILE: _ClassVar[SectionKind]
SECTION_KIND_UNSPECIFIED: SectionKind
SECTION_KIND_ROUTING: SectionKind
SECTION_KIND_CASE_FILE: SectionKind

class EnvelopeHeader(_message.Message):
    __slots__ = ("format_version", "event_id", "event_type", "schema_version", "stream_id", "stream_sequence", "occurred_at_unix_micros", "producer_org", "producer_service", "signing_key_id", "trace")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ORG_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_SERVICE_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    event_id: str
    event_type: str
    schema_version: int
    stream_id: str
    stream_sequence: int
    occurred_at_unix_micros: int
    producer_org: str
    producer_service: str
    signing_key_id: str
    trace: TraceContext
    def __init__(self, format_version: _Optional[int] = ..., event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., schema_version: _Optional[int] = ..., stream_id: _Optional[str] = ..., stream_sequence: _Optional[int] = ..., occurred_at_unix_micros: _Optional[int] = ..., producer_org: _Optional[str] = ..., producer_service: _Optional[str] = ..., signing_key_id: _Optional[str] = ..., trace: _Optional[_Union[TraceContext, _Mapping]] = ...) -> None: ...

class TraceContext(_message.Message):
    __slots__ = ("traceparent", "tracestate")
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    traceparent: str
    tracestate: str
    def __init__(self, traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ...) -> None: ...

class SealedSection(_message.Message):
    __slots__ = ("kind", "key_id", "nonce", "ciphertext", "digest")
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    kind: SectionKind
    key_id: str
    nonce: bytes
    ciphertext: bytes
    digest: bytes
    def __init__(self, kind: _Optional[_Union[SectionKind, str]] = ..., key_id: _Optional[str] = ..., nonce: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ..., digest: _Optional[bytes] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("format_version", "header", "header_digest", "sections", "signature")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    HEADER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SECTIONS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    header: bytes
    header_digest: bytes
    sections: _containers.RepeatedCompositeFieldContainer[SealedSection]
    signature: bytes
    def __init__(self, format_version: _Optional[int] = ..., header: _Optional[bytes] = ..., header_digest: _Optional[bytes] = ..., sections: _Optional[_Iterable[_Union[SealedSection, _Mapping]]] = ..., signature: _Optional[bytes] = ...) -> None: ...
