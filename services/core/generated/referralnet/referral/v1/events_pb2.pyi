from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as _vocabulary_pb2
from services.core.generated.referralnet.referral.v1 import referral_pb2 as _referral_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReferralNeed(_message.Message):
    __slots__ = ("service_type", "urgency")
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    service_type: _vocabulary_pb2.ServiceType
    urgency: _vocabulary_pb2.Urgency
    def __init__(self, service_type: _Optional[_Union[_vocabulary_pb2.ServiceType, str]] = ..., urgency: _Optional[_Union[_vocabulary_pb2.Urgency, str]] = ...) -> None: ...

class ReferralOpened(_message.Message):
    __slots__ = ("referral_id", "subject_id", "referrer_org", "needs", "region", "minor", "exploitation_type", "submitted_at_unix_micros", "submission_event_id")
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRER_ORG_FIELD_NUMBER: _ClassVar[int]
    NEEDS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MINOR_FIELD_NUMBER: _ClassVar[int]
    EXPLOITATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    subject_id: str
    referrer_org: str
    needs: _containers.RepeatedCompositeFieldContainer[ReferralNeed]
    region: _vocabulary_pb2.Region
    minor: bool
    exploitation_type: _vocabulary_pb2.ExploitationType
    submitted_at_unix_micros: int
    submission_event_id: str
    def __init__(self, referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., referrer_org: _Optional[str] = ..., needs: _Optional[_Iterable[_Union[ReferralNeed, _Mapping]]] = ..., region: _Optional[_Union[_vocabulary_pb2.Region, str]] = ..., minor: _Optional[bool] = ..., exploitation_type: _Optional[_Union[_vocabulary_pb2.ExploitationType, str]] = ..., submitted_at_unix_micros: _Optional[int] = ..., submission_event_id: _Optional[str] = ...) -> None: ...

class HandoffOffered(_message.Message):
    __slots__ = ("handoff_id", "referral_id", "subject_id", "need_index", "service_type", "urgency", "region", "minor", "provider_org", "offered_at_unix_micros", "expires_at_unix_micros", "consent_id", "attempt")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NEED_INDEX_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MINOR_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ORG_FIELD_NUMBER: _ClassVar[int]
    OFFERED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    referral_id: str
    subject_id: str
    need_index: int
    service_type: _vocabulary_pb2.ServiceType
    urgency: _vocabulary_pb2.Urgency
    region: _vocabulary_pb2.Region
    minor: bool
    provider_org: str
    offered_at_unix_micros: int
    expires_at_unix_micros: int
    consent_id: str
    attempt: int
    def __init__(self, handoff_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., need_index: _Optional[int] = ..., service_type: _Optional[_Union[_vocabulary_pb2.ServiceType, str]] = ..., urgency: _Optional[_Union[_vocabulary_pb2.Urgency, str]] = ..., region: _Optional[_Union[_vocabulary_pb2.Region, str]] = ..., minor: _Optional[bool] = ..., provider_org: _Optional[str] = ..., offered_at_unix_micros: _Optional[int] = ..., expires_at_unix_micros: _Optional[int] = ..., consent_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class HandoffAccepted(_message.Message):
    __slots__ = ("handoff_id", "referral_id", "subject_id", "provider_org", "accepted_at_unix_micros")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ORG_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    referral_id: str
    subject_id: str
    provider_org: str
    accepted_at_unix_micros: int
    def __init__(self, handoff_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., provider_org: _Optional[str] = ..., accepted_at_unix_micros: _Optional[int] = ...) -> None: ...

class HandoffDeclined(_message.Message):
    __slots__ = ("handoff_id", "referral_id", "subject_id", "provider_org", "reason", "note", "declined_at_unix_micros")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ORG_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    DECLINED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    referral_id: str
    subject_id: str
    provider_org: str
    reason: _referral_pb2.DeclineReason
    note: str
    declined_at_unix_micros: int
    def __init__(self, handoff_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., provider_org: _Optional[str] = ..., reason: _Optional[_Union[_referral_pb2.DeclineReason, str]] = ..., note: _Optional[str] = ..., declined_at_unix_micros: _Optional[int] = ...) -> None: ...

class HandoffExpired(_message.Message):
    __slots__ = ("handoff_id", "referral_id", "subject_id", "provider_org", "expired_at_unix_micros")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ORG_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    referral_id: str
    subject_id: str
    provider_org: str
    expired_at_unix_micros: int
    def __init__(self, handoff_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., provider_org: _Optional[str] = ..., expired_at_unix_micros: _Optional[int] = ...) -> None: ...

class HandoffWithdrawn(_message.Message):
    __slots__ = ("handoff_id", "referral_id", "subject_id", "provider_org", "reason", "note", "withdrawn_by_org", "withdrawn_at_unix_micros")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ORG_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_BY_ORG_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    referral_id: str
    subject_id: str
    provider_org: str
    reason: _referral_pb2.WithdrawReason
    note: str
    withdrawn_by_org: str
    withdrawn_at_unix_micros: int
    def __init__(self, handoff_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., provider_org: _Optional[str] = ..., reason: _Optional[_Union[_referral_pb2.WithdrawReason, str]] = ..., note: _Optional[str] = ..., withdrawn_by_org: _Optional[str] = ..., withdrawn_at_unix_micros: _Optional[int] = ...) -> None: ...

class ServiceStarted(_message.Message):
    __slots__ = ("handoff_id", "referral_id", "subject_id", "provider_org", "started_at_unix_micros")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ORG_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    referral_id: str
    subject_id: str
    provider_org: str
    started_at_unix_micros: int
    def __init__(self, handoff_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., provider_org: _Optional[str] = ..., started_at_unix_micros: _Optional[int] = ...) -> None: ...

class ServiceCompleted(_message.Message):
    __slots__ = ("handoff_id", "referral_id", "subject_id", "provider_org", "outcome", "note", "completed_at_unix_micros")
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ORG_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    handoff_id: str
    referral_id: str
    subject_id: str
    provider_org: str
    outcome: _referral_pb2.ServiceOutcome
    note: str
    completed_at_unix_micros: int
    def __init__(self, handoff_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., provider_org: _Optional[str] = ..., outcome: _Optional[_Union[_referral_pb2.ServiceOutcome, str]] = ..., note: _Optional[str] = ..., completed_at_unix_micros: _Optional[int] = ...) -> None: ...

class ReferralEscalated(_message.Message):
    __slots__ = ("referral_id", "subject_id", "need_index", "service_type", "region", "minor", "escalated_at_unix_micros")
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NEED_INDEX_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MINOR_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    subject_id: str
    need_index: int
    service_type: _vocabulary_pb2.ServiceType
    region: _vocabulary_pb2.Region
    minor: bool
    escalated_at_unix_micros: int
    def __init__(self, referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., need_index: _Optional[int] = ..., service_type: _Optional[_Union[_vocabulary_pb2.ServiceType, str]] = ..., region: _Optional[_Union[_vocabulary_pb2.Region, str]] = ..., minor: _Optional[bool] = ..., escalated_at_unix_micros: _Optional[int] = ...) -> None: ...

class ReferralClosed(_message.Message):
    __slots__ = ("referral_id", "subject_id", "closed_at_unix_micros")
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    subject_id: str
    closed_at_unix_micros: int
    def __init__(self, referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., closed_at_unix_micros: _Optional[int] = ...) -> None: ...

class CapacityUpdated(_message.Message):
    __slots__ = ("org_id", "service_type", "available_places", "updated_at_unix_micros")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_PLACES_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    service_type: _vocabulary_pb2.ServiceType
    available_places: int
    updated_at_unix_micros: int
    def __init__(self, org_id: _Optional[str] = ..., service_type: _Optional[_Union[_vocabulary_pb2.ServiceType, str]] = ..., available_places: _Optional[int] = ..., updated_at_unix_micros: _Optional[int] = ...) -> None: ...
