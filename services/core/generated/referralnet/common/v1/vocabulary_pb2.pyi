from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class OrgRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORG_ROLE_UNSPECIFIED: _ClassVar[OrgRole]
    ORG_ROLE_POLICE: _ClassVar[OrgRole]
    ORG_ROLE_NGO: _ClassVar[OrgRole]
    ORG_ROLE_PROSECUTOR: _ClassVar[OrgRole]
    ORG_ROLE_SHELTER: _ClassVar[OrgRole]
    ORG_ROLE_LEGAL: _ClassVar[OrgRole]
    ORG_ROLE_PSYCHOSOCIAL: _ClassVar[OrgRole]
    ORG_ROLE_HEALTH: _ClassVar[OrgRole]
    ORG_ROLE_CHILD_PROTECTION: _ClassVar[OrgRole]
    ORG_ROLE_COORDINATOR: _ClassVar[OrgRole]
    ORG_ROLE_AUDITOR: _ClassVar[OrgRole]

class Region(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REGION_UNSPECIFIED: _ClassVar[Region]
    REGION_AMAZONAS: _ClassVar[Region]
    REGION_ANCASH: _ClassVar[Region]
    REGION_APURIMAC: _ClassVar[Region]
    REGION_AREQUIPA: _ClassVar[Region]
    REGION_AYACUCHO: _ClassVar[Region]
    REGION_CAJAMARCA: _ClassVar[Region]
    REGION_CALLAO: _ClassVar[Region]
    REGION_CUSCO: _ClassVar[Region]
    REGION_HUANCAVELICA: _ClassVar[Region]
    REGION_HUANUCO: _ClassVar[Region]
    REGION_ICA: _ClassVar[Region]
    REGION_JUNIN: _ClassVar[Region]
    REGION_LA_LIBERTAD: _ClassVar[Region]
    REGION_LAMBAYEQUE: _ClassVar[Region]
    REGION_LIMA: _ClassVar[Region]
    REGION_LORETO: _ClassVar[Region]
    REGION_MADRE_DE_DIOS: _ClassVar[Region]
    REGION_MOQUEGUA: _ClassVar[Region]
    REGION_PASCO: _ClassVar[Region]
    REGION_PIURA: _ClassVar[Region]
    REGION_PUNO: _ClassVar[Region]
    REGION_SAN_MARTIN: _ClassVar[Region]
    REGION_TACNA: _ClassVar[Region]
    REGION_TUMBES: _ClassVar[Region]
    REGION_UCAYALI: _ClassVar[Region]

class ServiceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVICE_TYPE_UNSPECIFIED: _ClassVar[ServiceType]
    SERVICE_TYPE_SHELTER: _ClassVar[ServiceType]
    SERVICE_TYPE_LEGAL_AID: _ClassVar[ServiceType]
    SERVICE_TYPE_PSYCHOSOCIAL: _ClassVar[ServiceType]
    SERVICE_TYPE_MEDICAL: _ClassVar[ServiceType]
    SERVICE_TYPE_REPATRIATION: _ClassVar[ServiceType]
    SERVICE_TYPE_FAMILY_REINTEGRATION: _ClassVar[ServiceType]
    SERVICE_TYPE_EDUCATION_VOCATIONAL: _ClassVar[ServiceType]
    SERVICE_TYPE_INTERPRETATION: _ClassVar[ServiceType]
    SERVICE_TYPE_CHILD_PROTECTION: _ClassVar[ServiceType]

class ExploitationType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPLOITATION_TYPE_UNSPECIFIED: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_SEXUAL_EXPLOITATION: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_FORCED_LABOUR_MINING: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_FORCED_LABOUR_LOGGING: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_FORCED_LABOUR_AGRICULTURE: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_FORCED_LABOUR_DOMESTIC_SERVICE: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_FORCED_LABOUR_STREET_VENDING: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_FORCED_LABOUR_BEGGING: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_FORCED_LABOUR_NARCOTICS_PRODUCTION: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_FORCED_LABOUR_INFORMAL_MANUFACTURING: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_CHILD_EARLY_FORCED_MARRIAGE: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_OTHER_GENDER_BASED_VIOLENCE: _ClassVar[ExploitationType]
    EXPLOITATION_TYPE_OTHER: _ClassVar[ExploitationType]

class Urgency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    URGENCY_UNSPECIFIED: _ClassVar[Urgency]
    URGENCY_ROUTINE: _ClassVar[Urgency]
    URGENCY_PRIORITY: _ClassVar[Urgency]
    URGENCY_IMMEDIATE: _ClassVar[Urgency]
ORG_ROLE_UNSPECIFIED: OrgRole
ORG_ROLE_POLICE: OrgRole
ORG_ROLE_NGO: OrgRole
ORG_ROLE_PROSECUTOR: OrgRole
ORG_ROLE_SHELTER: OrgRole
ORG_ROLE_LEGAL: OrgRole
ORG_ROLE_PSYCHOSOCIAL: OrgRole
ORG_ROLE_HEALTH: OrgRole
ORG_ROLE_CHILD_PROTECTION: OrgRole
ORG_ROLE_COORDINATOR: OrgRole
ORG_ROLE_AUDITOR: OrgRole
REGION_UNSPECIFIED: Region
REGION_AMAZONAS: Region
REGION_ANCASH: Region
REGION_APURIMAC: Region
REGION_AREQUIPA: Region
REGION_AYACUCHO: Region
REGION_CAJAMARCA: Region
REGION_CALLAO: Region
REGION_CUSCO: Region
REGION_HUANCAVELICA: Region
REGION_HUANUCO: Region
REGION_ICA: Region
REGION_JUNIN: Region
REGION_LA_LIBERTAD: Region
REGION_LAMBAYEQUE: Region
REGION_LIMA: Region
REGION_LORETO: Region
REGION_MADRE_DE_DIOS: Region
REGION_MOQUEGUA: Region
REGION_PASCO: Region
REGION_PIURA: Region
REGION_PUNO: Region
REGION_SAN_MARTIN: Region
REGION_TACNA: Region
REGION_TUMBES: Region
REGION_UCAYALI: Region
SERVICE_TYPE_UNSPECIFIED: ServiceType
SERVICE_TYPE_SHELTER: ServiceType
SERVICE_TYPE_LEGAL_AID: ServiceType
SERVICE_TYPE_PSYCHOSOCIAL: ServiceType
SERVICE_TYPE_MEDICAL: ServiceType
SERVICE_TYPE_REPATRIATION: ServiceType
SERVICE_TYPE_FAMILY_REINTEGRATION: ServiceType
SERVICE_TYPE_EDUCATION_VOCATIONAL: ServiceType
SERVICE_TYPE_INTERPRETATION: ServiceType
SERVICE_TYPE_CHILD_PROTECTION: ServiceType
EXPLOITATION_TYPE_UNSPECIFIED: ExploitationType
EXPLOITATION_TYPE_SEXUAL_EXPLOITATION: ExploitationType
EXPLOITATION_TYPE_FORCED_LABOUR_MINING: ExploitationType
EXPLOITATION_TYPE_FORCED_LABOUR_LOGGING: ExploitationType
EXPLOITATION_TYPE_FORCED_LABOUR_AGRICULTURE: ExploitationType
EXPLOITATION_TYPE_FORCED_LABOUR_DOMESTIC_SERVICE: ExploitationType
EXPLOITATION_TYPE_FORCED_LABOUR_STREET_VENDING: ExploitationType
EXPLOITATION_TYPE_FORCED_LABOUR_BEGGING: ExploitationType
EXPLOITATION_TYPE_FORCED_LABOUR_NARCOTICS_PRODUCTION: ExploitationType
EXPLOITATION_TYPE_FORCED_LABOUR_INFORMAL_MANUFACTURING: ExploitationType
EXPLOITATION_TYPE_CHILD_EARLY_FORCED_MARRIAGE: ExploitationType
EXPLOITATION_TYPE_OTHER_GENDER_BASED_VIOLENCE: ExploitationType
EXPLOITATION_TYPE_OTHER: ExploitationType
URGENCY_UNSPECIFIED: Urgency
URGENCY_ROUTINE: Urgency
URGENCY_PRIORITY: Urgency
URGENCY_IMMEDIATE: Urgency
