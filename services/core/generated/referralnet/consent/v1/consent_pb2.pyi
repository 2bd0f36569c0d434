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

class DataCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_CATEGORY_UNSPECIFIED: _ClassVar[DataCategory]
    DATA_CATEGORY_ROUTING: _ClassVar[DataCategory]
    DATA_CATEGORY_CASE_FILE: _ClassVar[DataCategory]

class Purpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PURPOSE_UNSPECIFIED: _ClassVar[Purpose]
    PURPOSE_SERVICE_DELIVERY: _ClassVar[Purpose]
    PURPOSE_LEGAL_PROCEEDINGS: _ClassVar[Purpose]
    PURPOSE_CASE_COORDINATION: _ClassVar[Purpose]

class ConsentGiver(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSENT_GIVER_UNSPECIFIED: _ClassVar[ConsentGiver]
    CONSENT_GIVER_SUBJECT: _ClassVar[ConsentGiver]
    CONSENT_GIVER_GUARDIAN: _ClassVar[ConsentGiver]
    CONSENT_GIVER_CHILD_PROTECTION_AUTHORITY: _ClassVar[ConsentGiver]
    CONSENT_GIVER_COORDINATOR_OVERRIDE: _ClassVar[ConsentGiver]
DATA_CATEGORY_UNSPECIFIED: DataCategory
DATA_CATEGORY_ROUTING: DataCategory
DATA_CATEGORY_CASE_FILE: DataCategory
PURPOSE_UNSPECIFIED: Purpose
PURPOSE_SERVICE_DELIVERY: Purpose
PURPOSE_LEGAL_PROCEEDINGS: Purpose
PURPOSE_CASE_COORDINATION: Purpose
CONSENT_GIVER_UNSPECIFIED: ConsentGiver
CONSENT_GIVER_SUBJECT: ConsentGiver
CONSENT_GIVER_GUARDIAN: ConsentGiver
CONSENT_GIVER_CHILD_PROTECTION_AUTHORITY: ConsentGiver
CONSENT_GIVER_COORDINATOR_OVERRIDE: ConsentGiver

class ConsentRecipient(_message.Message):
    __slots__ = ("role", "org_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    role: _vocabulary_pb2.OrgRole
    org_id: str
    def __init__(self, role: _Optional[_Union[_vocabulary_pb2.OrgRole, str]] = ..., org_id: _Optional[str] = ...) -> None: ...

class ConsentGrant(_message.Message):
    __slots__ = ("recipient", "purposes", "categories", "given_by", "expires_at")
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    PURPOSES_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    GIVEN_BY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    recipient: ConsentRecipient
    purposes: _containers.RepeatedScalarFieldContainer[Purpose]
    categories: _containers.RepeatedScalarFieldContainer[DataCategory]
    given_by: ConsentGiver
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, recipient: _Optional[_Union[ConsentRecipient, _Mapping]] = ..., purposes: _Optional[_Iterable[_Union[Purpose, str]]] = ..., categories: _Optional[_Iterable[_Union[DataCategory, str]]] = ..., given_by: _Optional[_Union[ConsentGiver, str]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Consent(_message.Message):
    __slots__ = ("consent_id", "subject_id", "grant", "recorded_by_org", "recorded_at", "revoked_at", "revoked_by_org")
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    RECORDED_BY_ORG_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BY_ORG_FIELD_NUMBER: _ClassVar[int]
    consent_id: str
    subject_id: str
    grant: ConsentGrant
    recorded_by_org: str
    recorded_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    revoked_by_org: str
    def __init__(self, consent_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., grant: _Optional[_Union[ConsentGrant, _Mapping]] = ..., recorded_by_org: _Optional[str] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_by_org: _Optional[str] = ...) -> None: ...
