from services.core.generated.referralnet.notify.v1 import notify_pb2 as _notify_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NoticeUndeliverable(_message.Message):
    __slots__ = ("delivery_id", "org_id", "notice_type", "channel", "event_id", "reference", "attempts", "last_outcome", "failed_at_unix_micros")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    NOTICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    org_id: str
    notice_type: _notify_pb2.NoticeType
    channel: _notify_pb2.Channel
    event_id: str
    reference: str
    attempts: int
    last_outcome: str
    failed_at_unix_micros: int
    def __init__(self, delivery_id: _Optional[str] = ..., org_id: _Optional[str] = ..., notice_type: _Optional[_Union[_notify_pb2.NoticeType, str]] = ..., channel: _Optional[_Union[_notify_pb2.Channel, str]] = ..., event_id: _Optional[str] = ..., reference: _Optional[str] = ..., attempts: _Optional[int] = ..., last_outcome: _Optional[str] = ..., failed_at_unix_micros: _Optional[int] = ...) -> None: ...
