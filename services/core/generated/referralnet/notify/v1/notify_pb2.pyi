from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as _vocabulary_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NoticeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTICE_TYPE_UNSPECIFIED: _ClassVar[NoticeType]
    NOTICE_TYPE_HANDOFF_OFFERED: _ClassVar[NoticeType]
    NOTICE_TYPE_OFFER_REMINDER: _ClassVar[NoticeType]
    NOTICE_TYPE_HANDOFF_EXPIRED: _ClassVar[NoticeType]
    NOTICE_TYPE_REFERRAL_ESCALATED: _ClassVar[NoticeType]
    NOTICE_TYPE_CONSENT_REVOKED: _ClassVar[NoticeType]
    NOTICE_TYPE_DELIVERY_FAILED: _ClassVar[NoticeType]

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_WEBHOOK: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_PENDING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DELIVERED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_FAILED: _ClassVar[DeliveryStatus]
NOTICE_TYPE_UNSPECIFIED: NoticeType
NOTICE_TYPE_HANDOFF_OFFERED: NoticeType
NOTICE_TYPE_OFFER_REMINDER: NoticeType
NOTICE_TYPE_HANDOFF_EXPIRED: NoticeType
NOTICE_TYPE_REFERRAL_ESCALATED: NoticeType
NOTICE_TYPE_CONSENT_REVOKED: NoticeType
NOTICE_TYPE_DELIVERY_FAILED: NoticeType
CHANNEL_UNSPECIFIED: Channel
CHANNEL_WEBHOOK: Channel
CHANNEL_EMAIL: Channel
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_PENDING: DeliveryStatus
DELIVERY_STATUS_DELIVERED: DeliveryStatus
DELIVERY_STATUS_FAILED: DeliveryStatus

class DeliveryAttempt(_message.Message):
    __slots__ = ("attempted_at_unix_micros", "outcome")
    ATTEMPTED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    attempted_at_unix_micros: int
    outcome: str
    def __init__(self, attempted_at_unix_micros: _Optional[int] = ..., outcome: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("delivery_id", "event_id", "notice_type", "channel", "endpoint", "status", "reference", "created_at_unix_micros", "delivered_at_unix_micros", "next_attempt_at_unix_micros", "attempts")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    NOTICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    event_id: str
    notice_type: NoticeType
    channel: Channel
    endpoint: str
    status: DeliveryStatus
    reference: str
    created_at_unix_micros: int
    delivered_at_unix_micros: int
    next_attempt_at_unix_micros: int
    attempts: _containers.RepeatedCompositeFieldContainer[DeliveryAttempt]
    def __init__(self, delivery_id: _Optional[str] = ..., event_id: _Optional[str] = ..., notice_type: _Optional[_Union[NoticeType, str]] = ..., channel: _Optional[_Union[Channel, str]] = ..., endpoint: _Optional[str] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., reference: _Optional[str] = ..., created_at_unix_micros: _Optional[int] = ..., delivered_at_unix_micros: _Optional[int] = ..., next_attempt_at_unix_micros: _Optional[int] = ..., attempts: _Optional[_Iterable[_Union[DeliveryAttempt, _Mapping]]] = ...) -> None: ...

class ListDeliveriesRequest(_message.Message):
    __slots__ = ("statuses", "event_id", "page_size", "page_token")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[DeliveryStatus]
    event_id: str
    page_size: int
    page_token: str
    def __init__(self, statuses: _Optional[_Iterable[_Union[DeliveryStatus, str]]] = ..., event_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries", "next_page_token")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    next_page_token: str
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("notice_id", "notice_type", "reference", "referral_id", "service_type", "region", "deadline_unix_micros", "act_at", "language", "text", "event_id", "occurred_at_unix_micros")
    NOTICE_ID_FIELD_NUMBER: _ClassVar[int]
    NOTICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    ACT_AT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    notice_id: str
    notice_type: NoticeType
    reference: str
    referral_id: str
    service_type: _vocabulary_pb2.ServiceType
    region: _vocabulary_pb2.Region
    deadline_unix_micros: int
    act_at: str
    language: str
    text: str
    event_id: str
    occurred_at_unix_micros: int
    def __init__(self, notice_id: _Optional[str] = ..., notice_type: _Optional[_Union[NoticeType, str]] = ..., reference: _Optional[str] = ..., referral_id: _Optional[str] = ..., service_type: _Optional[_Union[_vocabulary_pb2.ServiceType, str]] = ..., region: _Optional[_Union[_vocabulary_pb2.Region, str]] = ..., deadline_unix_micros: _Optional[int] = ..., act_at: _Optional[str] = ..., language: _Optional[str] = ..., text: _Optional[str] = ..., event_id: _Optional[str] = ..., occurred_at_unix_micros: _Optional[int] = ...) -> None: ...
