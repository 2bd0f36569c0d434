from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as _vocabulary_pb2
from services.core.generated.referralnet.consent.v1 import consent_pb2 as _consent_pb2
from services.core.generated.referralnet.intake.v1 import intake_pb2 as _intake_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConsentRecorded(_message.Message):
    __slots__ = ("consent_id", "subject_id", "grant", "recorded_by_org", "recorded_at_unix_micros")
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_BY_ORG_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    consent_id: str
    subject_id: str
    grant: _consent_pb2.ConsentGrant
    recorded_by_org: str
    recorded_at_unix_micros: int
    def __init__(self, consent_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., grant: _Optional[_Union[_consent_pb2.ConsentGrant, _Mapping]] = ..., recorded_by_org: _Optional[str] = ..., recorded_at_unix_micros: _Optional[int] = ...) -> None: ...

class ConsentOverrideRecorded(_message.Message):
    __slots__ = ("consent_id", "subject_id", "grant", "recorded_by_org", "recorded_at_unix_micros")
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_BY_ORG_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    consent_id: str
    subject_id: str
    grant: _consent_pb2.ConsentGrant
    recorded_by_org: str
    recorded_at_unix_micros: int
    def __init__(self, consent_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., grant: _Optional[_Union[_consent_pb2.ConsentGrant, _Mapping]] = ..., recorded_by_org: _Optional[str] = ..., recorded_at_unix_micros: _Optional[int] = ...) -> None: ...

class OverrideJustification(_message.Message):
    __slots__ = ("justification",)
    JUSTIFICATION_FIELD_NUMBER: _ClassVar[int]
    justification: str
    def __init__(self, justification: _Optional[str] = ...) -> None: ...

class ConsentRevoked(_message.Message):
    __slots__ = ("consent_id", "subject_id", "revoked_by_org", "revoked_at_unix_micros")
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BY_ORG_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    consent_id: str
    subject_id: str
    revoked_by_org: str
    revoked_at_unix_micros: int
    def __init__(self, consent_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., revoked_by_org: _Optional[str] = ..., revoked_at_unix_micros: _Optional[int] = ...) -> None: ...

class ReferralSubmitted(_message.Message):
    __slots__ = ("referral_id", "subject_id", "referrer_org", "needs", "region", "minor", "exploitation_type", "submitted_at_unix_micros", "consent_ids", "case_file_key_id")
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRER_ORG_FIELD_NUMBER: _ClassVar[int]
    NEEDS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MINOR_FIELD_NUMBER: _ClassVar[int]
    EXPLOITATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_IDS_FIELD_NUMBER: _ClassVar[int]
    CASE_FILE_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    subject_id: str
    referrer_org: str
    needs: _containers.RepeatedCompositeFieldContainer[_intake_pb2.Need]
    region: _vocabulary_pb2.Region
    minor: bool
    exploitation_type: _vocabulary_pb2.ExploitationType
    submitted_at_unix_micros: int
    consent_ids: _containers.RepeatedScalarFieldContainer[str]
    case_file_key_id: str
    def __init__(self, referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., referrer_org: _Optional[str] = ..., needs: _Optional[_Iterable[_Union[_intake_pb2.Need, _Mapping]]] = ..., region: _Optional[_Union[_vocabulary_pb2.Region, str]] = ..., minor: _Optional[bool] = ..., exploitation_type: _Optional[_Union[_vocabulary_pb2.ExploitationType, str]] = ..., submitted_at_unix_micros: _Optional[int] = ..., consent_ids: _Optional[_Iterable[str]] = ..., case_file_key_id: _Optional[str] = ...) -> None: ...

class KeyReleased(_message.Message):
    __slots__ = ("release_id", "subject_id", "key_id", "category", "purpose", "recipient_org", "recipient_kem_key_id", "consent_id", "handoff_id", "released_at_unix_micros")
    RELEASE_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_ORG_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_KEM_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    release_id: str
    subject_id: str
    key_id: str
    category: _consent_pb2.DataCategory
    purpose: _consent_pb2.Purpose
    recipient_org: str
    recipient_kem_key_id: str
    consent_id: str
    handoff_id: str
    released_at_unix_micros: int
    def __init__(self, release_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., key_id: _Optional[str] = ..., category: _Optional[_Union[_consent_pb2.DataCategory, str]] = ..., purpose: _Optional[_Union[_consent_pb2.Purpose, str]] = ..., recipient_org: _Optional[str] = ..., recipient_kem_key_id: _Optional[str] = ..., consent_id: _Optional[str] = ..., handoff_id: _Optional[str] = ..., released_at_unix_micros: _Optional[int] = ...) -> None: ...

class SubjectErased(_message.Message):
    __slots__ = ("subject_id", "erased_by_org", "erased_at_unix_micros")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ERASED_BY_ORG_FIELD_NUMBER: _ClassVar[int]
    ERASED_AT_UNIX_MICROS_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    erased_by_org: str
    erased_at_unix_micros: int
    def __init__(self, subject_id: _Optional[str] = ..., erased_by_org: _Optional[str] = ..., erased_at_unix_micros: _Optional[int] = ...) -> None: ...
