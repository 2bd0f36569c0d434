import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as _vocabulary_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HandoffState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HANDOFF_STATE_UNSPECIFIED: _ClassVar[HandoffState]
    HANDOFF_STATE_OFFERED: _ClassVar[HandoffState]
    HANDOFF_STATE_ACCEPTED: _ClassVar[HandoffState]
    HANDOFF_STATE_DECLINED: _ClassVar[HandoffState]
    HANDOFF_STATE_EXPIRED: _ClassVar[HandoffState]
    HANDOFF_STATE_WITHDRAWN: _ClassVar[HandoffState]
    HANDOFF_STATE_IN_SERVICE: _ClassVar[HandoffState]
    HANDOFF_STATE_COMPLETED: _ClassVar[HandoffState]

class DeclineReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECLINE_REASON_UNSPECIFIED: _ClassVar[DeclineReason]
    DECLINE_REASON_NO_CAPACITY: _ClassVar[DeclineReason]
    DECLINE_REASON_OUTSIDE_MANDATE: _ClassVar[DeclineReason]
    DECLINE_REASON_AGE_GROUP_NOT_SERVED: _ClassVar[DeclineReason]
    DECLINE_REASON_SAFETY_CONCERN: _ClassVar[DeclineReason]
    DECLINE_REASON_CONFLICT_OF_INTEREST: _ClassVar[DeclineReason]
    DECLINE_REASON_OTHER: _ClassVar[DeclineReason]

class ServiceOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVICE_OUTCOME_UNSPECIFIED: _ClassVar[ServiceOutcome]
    SERVICE_OUTCOME_COMPLETED_AS_PLANNED: _ClassVar[ServiceOutcome]
    SERVICE_OUTCOME_REFERRED_ONWARD: _ClassVar[ServiceOutcome]
    SERVICE_OUTCOME_DISCONTINUED_BY_SUBJECT: _ClassVar[ServiceOutcome]
    SERVICE_OUTCOME_LOST_CONTACT: _ClassVar[ServiceOutcome]
    SERVICE_OUTCOME_OTHER: _ClassVar[ServiceOutcome]

class WithdrawReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WITHDRAW_REASON_UNSPECIFIED: _ClassVar[WithdrawReason]
    WITHDRAW_REASON_NO_LONGER_NEEDED: _ClassVar[WithdrawReason]
    WITHDRAW_REASON_SUBJECT_REQUEST: _ClassVar[WithdrawReason]
    WITHDRAW_REASON_CONSENT_REVOKED: _ClassVar[WithdrawReason]
    WITHDRAW_REASON_SAFETY_CONCERN: _ClassVar[WithdrawReason]
    WITHDRAW_REASON_OTHER: _ClassVar[WithdrawReason]
    WITHDRAW_REASON_SUBJECT_ERASED: _ClassVar[WithdrawReason]

class ReferralState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFERRAL_STATE_UNSPECIFIED: _ClassVar[ReferralState]
    REFERRAL_STATE_OPEN: _ClassVar[ReferralState]
    REFERRAL_STATE_CLOSED: _ClassVar[ReferralState]

class NeedState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NEED_STATE_UNSPECIFIED: _ClassVar[NeedState]
    NEED_STATE_OFFERED: _ClassVar[NeedState]
    NEED_STATE_ACCEPTED: _ClassVar[NeedState]
    NEED_STATE_IN_SERVICE: _ClassVar[NeedState]
    NEED_STATE_COMPLETED: _ClassVar[NeedState]
    NEED_STATE_WITHDRAWN: _ClassVar[NeedState]
    NEED_STATE_ESCALATED: _ClassVar[NeedState]
HANDOFF_STATE_UNSPECIFIED: HandoffState
HANDOFF_STATE_OFFERED: HandoffState
HANDOFF_STATE_ACCEPTED: HandoffState
HANDOFF_STATE_DECLINED: HandoffState
HANDOFF_STATE_EXPIRED: HandoffState
HANDOFF_STATE_WITHDRAWN: HandoffState
HANDOFF_STATE_IN_SERVICE: HandoffState
HANDOFF_STATE_COMPLETED: HandoffState
DECLINE_REASON_UNSPECIFIED: DeclineReason
DECLINE_REASON_NO_CAPACITY: DeclineReason
DECLINE_REASON_OUTSIDE_MANDATE: DeclineReason
DECLINE_REASON_AGE_GROUP_NOT_SERVED: DeclineReason
DECLINE_REASON_SAFETY_CONCERN: DeclineReason
DECLINE_REASON_CONFLICT_OF_INTEREST: DeclineReason
DECLINE_REASON_OTHER: DeclineReason
SERVICE_OUTCOME_UNSPECIFIED: ServiceOutcome
SERVICE_OUTCOME_COMPLETED_AS_PLANNED: ServiceOutcome
SERVICE_OUTCOME_REFERRED_ONWARD: ServiceOutcome
SERVICE_OUTCOME_DISCONTINUED_BY_SUBJECT: ServiceOutcome
SERVICE_OUTCOME_LOST_CONTACT: ServiceOutcome
SERVICE_OUTCOME_OTHER: ServiceOutcome
WITHDRAW_REASON_UNSPECIFIED: WithdrawReason
WITHDRAW_REASON_NO_LONGER_NEEDED: WithdrawReason
WITHDRAW_REASON_SUBJECT_REQUEST: WithdrawReason
WITHDRAW_REASON_CONSENT_REVOKED: WithdrawReason
WITHDRAW_REASON_SAFETY_CONCERN: WithdrawReason
WITHDRAW_REASON_OTHER: WithdrawReason
WITHDRAW_REASON_SUBJECT_ERASED: WithdrawReason
REFERRAL_STATE_UNSPECIFIED: ReferralState
REFERRAL_STATE_OPEN: ReferralState
REFERRAL_STATE_CLOSED: ReferralState
NEED_STATE_UNSPECIFIED: NeedState
NEED_STATE_OFFERED: NeedState
NEED_STATE_ACCEPTED: NeedState
NEED_STATE_IN_SERVICE: NeedState
NEED_STATE_COMPLETED: NeedState
NEED_STATE_WITHDRAWN: NeedState
NEED_STATE_ESCALATED: NeedState

class Handoff(_message.Message):
    __slots__ = ("handoff_id", "referral_id", "subject_id", "service_type", "urgency", "region", "minor", "exploitation_type", "provider_org", "state", "offered_at", "offer_expires_at", "updated_at", "decline_reason", "outcome", "withdraw_reason", "note")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MINOR_FIELD_NUMBER: _ClassVar[int]
    EXPLOITATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ORG_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OFFERED_AT_FIELD_NUMBER: _ClassVar[int]
    OFFER_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    DECLINE_REASON_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    WITHDRAW_REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    referral_id: str
    subject_id: str
    service_type: _vocabulary_pb2.ServiceType
    urgency: _vocabulary_pb2.Urgency
    region: _vocabulary_pb2.Region
    minor: bool
    exploitation_type: _vocabulary_pb2.ExploitationType
    provider_org: str
    state: HandoffState
    offered_at: _timestamp_pb2.Timestamp
    offer_expires_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    decline_reason: DeclineReason
    outcome: ServiceOutcome
    withdraw_reason: WithdrawReason
    note: str
    def __init__(self, handoff_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., service_type: _Optional[_Union[_vocabulary_pb2.ServiceType, str]] = ..., urgency: _Optional[_Union[_vocabulary_pb2.Urgency, str]] = ..., region: _Optional[_Union[_vocabulary_pb2.Region, str]] = ..., minor: _Optional[bool] = ..., exploitation_type: _Optional[_Union[_vocabulary_pb2.ExploitationType, str]] = ..., provider_org: _Optional[str] = ..., state: _Optional[_Union[HandoffState, str]] = ..., offered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., offer_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decline_reason: _Optional[_Union[DeclineReason, str]] = ..., outcome: _Optional[_Union[ServiceOutcome, str]] = ..., withdraw_reason: _Optional[_Union[WithdrawReason, str]] = ..., note: _Optional[str] = ...) -> None: ...

class ListHandoffsRequest(_message.Message):
    __slots__ = ("states", "page_size", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[HandoffState]
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[HandoffState, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListHandoffsResponse(_message.Message):
    __slots__ = ("handoffs", "next_page_token")
    HANDOFFS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    handoffs: _containers.RepeatedCompositeFieldContainer[Handoff]
    next_page_token: str
    def __init__(self, handoffs: _Optional[_Iterable[_Union[Handoff, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AcceptHandoffRequest(_message.Message):
    __slots__ = ("handoff_id",)
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    def __init__(self, handoff_id: _Optional[str] = ...) -> None: ...

class AcceptHandoffResponse(_message.Message):
    __slots__ = ("handoff",)
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    handoff: Handoff
    def __init__(self, handoff: _Optional[_Union[Handoff, _Mapping]] = ...) -> None: ...

class DeclineHandoffRequest(_message.Message):
    __slots__ = ("handoff_id", "reason", "note")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    reason: DeclineReason
    note: str
    def __init__(self, handoff_id: _Optional[str] = ..., reason: _Optional[_Union[DeclineReason, str]] = ..., note: _Optional[str] = ...) -> None: ...

class DeclineHandoffResponse(_message.Message):
    __slots__ = ("handoff",)
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    handoff: Handoff
    def __init__(self, handoff: _Optional[_Union[Handoff, _Mapping]] = ...) -> None: ...

class StartServiceRequest(_message.Message):
    __slots__ = ("handoff_id",)
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    def __init__(self, handoff_id: _Optional[str] = ...) -> None: ...

class StartServiceResponse(_message.Message):
    __slots__ = ("handoff",)
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    handoff: Handoff
    def __init__(self, handoff: _Optional[_Union[Handoff, _Mapping]] = ...) -> None: ...

class CompleteServiceRequest(_message.Message):
    __slots__ = ("handoff_id", "outcome", "note")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    outcome: ServiceOutcome
    note: str
    def __init__(self, handoff_id: _Optional[str] = ..., outcome: _Optional[_Union[ServiceOutcome, str]] = ..., note: _Optional[str] = ...) -> None: ...

class CompleteServiceResponse(_message.Message):
    __slots__ = ("handoff",)
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    handoff: Handoff
    def __init__(self, handoff: _Optional[_Union[Handoff, _Mapping]] = ...) -> None: ...

class WithdrawHandoffRequest(_message.Message):
    __slots__ = ("handoff_id", "reason", "note")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    reason: WithdrawReason
    note: str
    def __init__(self, handoff_id: _Optional[str] = ..., reason: _Optional[_Union[WithdrawReason, str]] = ..., note: _Optional[str] = ...) -> None: ...

class WithdrawHandoffResponse(_message.Message):
    __slots__ = ("handoff",)
    HANDOFF_FIELD_NUMBER: _ClassVar[int]
    handoff: Handoff
    def __init__(self, handoff: _Optional[_Union[Handoff, _Mapping]] = ...) -> None: ...

class GetReferralRequest(_message.Message):
    __slots__ = ("referral_id",)
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    def __init__(self, referral_id: _Optional[str] = ...) -> None: ...

class NeedStatus(_message.Message):
    __slots__ = ("service_type", "urgency", "state", "handoffs")
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HANDOFFS_FIELD_NUMBER: _ClassVar[int]
    service_type: _vocabulary_pb2.ServiceType
    urgency: _vocabulary_pb2.Urgency
    state: NeedState
    handoffs: _containers.RepeatedCompositeFieldContainer[Handoff]
    def __init__(self, service_type: _Optional[_Union[_vocabulary_pb2.ServiceType, str]] = ..., urgency: _Optional[_Union[_vocabulary_pb2.Urgency, str]] = ..., state: _Optional[_Union[NeedState, str]] = ..., handoffs: _Optional[_Iterable[_Union[Handoff, _Mapping]]] = ...) -> None: ...

class Referral(_message.Message):
    __slots__ = ("referral_id", "subject_id", "referrer_org", "region", "minor", "exploitation_type", "state", "submitted_at", "closed_at", "needs")
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRER_ORG_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MINOR_FIELD_NUMBER: _ClassVar[int]
    EXPLOITATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    NEEDS_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    subject_id: str
    referrer_org: str
    region: _vocabulary_pb2.Region
    minor: bool
    exploitation_type: _vocabulary_pb2.ExploitationType
    state: ReferralState
    submitted_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    needs: _containers.RepeatedCompositeFieldContainer[NeedStatus]
    def __init__(self, referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., referrer_org: _Optional[str] = ..., region: _Optional[_Union[_vocabulary_pb2.Region, str]] = ..., minor: _Optional[bool] = ..., exploitation_type: _Optional[_Union[_vocabulary_pb2.ExploitationType, str]] = ..., state: _Optional[_Union[ReferralState, str]] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., needs: _Optional[_Iterable[_Union[NeedStatus, _Mapping]]] = ...) -> None: ...

class GetReferralResponse(_message.Message):
    __slots__ = ("referral",)
    REFERRAL_FIELD_NUMBER: _ClassVar[int]
    referral: Referral
    def __init__(self, referral: _Optional[_Union[Referral, _Mapping]] = ...) -> None: ...

class UpdateCapacityRequest(_message.Message):
    __slots__ = ("service_type", "available_places")
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_PLACES_FIELD_NUMBER: _ClassVar[int]
    service_type: _vocabulary_pb2.ServiceType
    available_places: int
    def __init__(self, service_type: _Optional[_Union[_vocabulary_pb2.ServiceType, str]] = ..., available_places: _Optional[int] = ...) -> None: ...

class UpdateCapacityResponse(_message.Message):
    __slots__ = ("service_type", "available_places", "updated_at")
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_PLACES_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    service_type: _vocabulary_pb2.ServiceType
    available_places: int
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, service_type: _Optional[_Union[_vocabulary_pb2.ServiceType, str]] = ..., available_places: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
