import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from services.core.generated.referralnet.common.v1 import vocabulary_pb2 as _vocabulary_pb2
from services.core.generated.referralnet.consent.v1 import consent_pb2 as _consent_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Need(_message.Message):
    __slots__ = ("service_type", "urgency")
    SERVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    URGENCY_FIELD_NUMBER: _ClassVar[int]
    service_type: _vocabulary_pb2.ServiceType
    urgency: _vocabulary_pb2.Urgency
    def __init__(self, service_type: _Optional[_Union[_vocabulary_pb2.ServiceType, str]] = ..., urgency: _Optional[_Union[_vocabulary_pb2.Urgency, str]] = ...) -> None: ...

class CaseFile(_message.Message):
    __slots__ = ("given_names", "family_names", "date_of_birth", "document_type", "document_number", "nationality", "languages", "narrative", "safe_contact")
    GIVEN_NAMES_FIELD_NUMBER: _ClassVar[int]
    FAMILY_NAMES_FIELD_NUMBER: _ClassVar[int]
    DATE_OF_BIRTH_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NATIONALITY_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    NARRATIVE_FIELD_NUMBER: _ClassVar[int]
    SAFE_CONTACT_FIELD_NUMBER: _ClassVar[int]
    given_names: str
    family_names: str
    date_of_birth: str
    document_type: str
    document_number: str
    nationality: str
    languages: _containers.RepeatedScalarFieldContainer[str]
    narrative: str
    safe_contact: str
    def __init__(self, given_names: _Optional[str] = ..., family_names: _Optional[str] = ..., date_of_birth: _Optional[str] = ..., document_type: _Optional[str] = ..., document_number: _Optional[str] = ..., nationality: _Optional[str] = ..., languages: _Optional[_Iterable[str]] = ..., narrative: _Optional[str] = ..., safe_contact: _Optional[str] = ...) -> None: ...

class SubmitReferralRequest(_message.Message):
    __slots__ = ("idempotency_key", "subject_id", "case_file", "needs", "region", "minor", "exploitation_type", "consents")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_FILE_FIELD_NUMBER: _ClassVar[int]
    NEEDS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    MINOR_FIELD_NUMBER: _ClassVar[int]
    EXPLOITATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    subject_id: str
    case_file: CaseFile
    needs: _containers.RepeatedCompositeFieldContainer[Need]
    region: _vocabulary_pb2.Region
    minor: bool
    exploitation_type: _vocabulary_pb2.ExploitationType
    consents: _containers.RepeatedCompositeFieldContainer[_consent_pb2.ConsentGrant]
    def __init__(self, idempotency_key: _Optional[str] = ..., subject_id: _Optional[str] = ..., case_file: _Optional[_Union[CaseFile, _Mapping]] = ..., needs: _Optional[_Iterable[_Union[Need, _Mapping]]] = ..., region: _Optional[_Union[_vocabulary_pb2.Region, str]] = ..., minor: _Optional[bool] = ..., exploitation_type: _Optional[_Union[_vocabulary_pb2.ExploitationType, str]] = ..., consents: _Optional[_Iterable[_Union[_consent_pb2.ConsentGrant, _Mapping]]] = ...) -> None: ...

class SubmitReferralResponse(_message.Message):
    __slots__ = ("referral_id", "subject_id", "submitted_at", "replayed", "consent_ids")
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    CONSENT_IDS_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    subject_id: str
    submitted_at: _timestamp_pb2.Timestamp
    replayed: bool
    consent_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, referral_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replayed: _Optional[bool] = ..., consent_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RecordConsentRequest(_message.Message):
    __slots__ = ("subject_id", "grant", "override_justification")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_JUSTIFICATION_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    grant: _consent_pb2.ConsentGrant
    override_justification: str
    def __init__(self, subject_id: _Optional[str] = ..., grant: _Optional[_Union[_consent_pb2.ConsentGrant, _Mapping]] = ..., override_justification: _Optional[str] = ...) -> None: ...

class RecordConsentResponse(_message.Message):
    __slots__ = ("consent",)
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    consent: _consent_pb2.Consent
    def __init__(self, consent: _Optional[_Union[_consent_pb2.Consent, _Mapping]] = ...) -> None: ...

class RevokeConsentRequest(_message.Message):
    __slots__ = ("subject_id", "consent_id")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    consent_id: str
    def __init__(self, subject_id: _Optional[str] = ..., consent_id: _Optional[str] = ...) -> None: ...

class RevokeConsentResponse(_message.Message):
    __slots__ = ("consent",)
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    consent: _consent_pb2.Consent
    def __init__(self, consent: _Optional[_Union[_consent_pb2.Consent, _Mapping]] = ...) -> None: ...

class ReleaseKeyRequest(_message.Message):
    __slots__ = ("subject_id", "purpose", "category")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    purpose: _consent_pb2.Purpose
    category: _consent_pb2.DataCategory
    def __init__(self, subject_id: _Optional[str] = ..., purpose: _Optional[_Union[_consent_pb2.Purpose, str]] = ..., category: _Optional[_Union[_consent_pb2.DataCategory, str]] = ...) -> None: ...

class ReleaseKeyResponse(_message.Message):
    __slots__ = ("release_id", "key_id", "released_key", "consent_id", "handoff_id", "released_at", "envelopes")
    RELEASE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASED_KEY_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    HANDOFF_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASED_AT_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    release_id: str
    key_id: str
    released_key: bytes
    consent_id: str
    handoff_id: str
    released_at: _timestamp_pb2.Timestamp
    envelopes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, release_id: _Optional[str] = ..., key_id: _Optional[str] = ..., released_key: _Optional[bytes] = ..., consent_id: _Optional[str] = ..., handoff_id: _Optional[str] = ..., released_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., envelopes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetSubjectConsentRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class GetSubjectConsentResponse(_message.Message):
    __slots__ = ("consents",)
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    consents: _containers.RepeatedCompositeFieldContainer[_consent_pb2.Consent]
    def __init__(self, consents: _Optional[_Iterable[_Union[_consent_pb2.Consent, _Mapping]]] = ...) -> None: ...

class EraseSubjectRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class EraseSubjectResponse(_message.Message):
    __slots__ = ("subject_id", "erased_by_org", "erased_at", "already_erased")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ERASED_BY_ORG_FIELD_NUMBER: _ClassVar[int]
    ERASED_AT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_ERASED_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    erased_by_org: str
    erased_at: _timestamp_pb2.Timestamp
    already_erased: bool
    def __init__(self, subject_id: _Optional[str] = ..., erased_by_org: _Optional[str] = ..., erased_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., already_erased: _Optional[bool] = ...) -> None: ...
