"""Who is calling: the organisation named by the client certificate, its role from the directory, its language.

The edge's interceptor (``services.core.grpcedge.interceptor``) builds a ``Caller`` for every call from the
verified mTLS peer and the call's ``accept-language`` metadata, and servicers read it with ``caller_of``.
The application layer takes a ``Caller`` and decides what it may do; it never sees gRPC.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from services.core.generated.referralnet.common.v1.vocabulary_pb2 import OrgRole

_CURRENT: contextvars.ContextVar[Caller] = contextvars.ContextVar("referralnet_caller")


@dataclass(frozen=True)
class Caller:
    """An authenticated organisation: its id, its role in the network, the language it reads (es/en)."""

    org_id: str
    role: OrgRole
    language: str = "es"


def caller_of(_context: object = None) -> Caller:
    """The caller of the RPC being served (set by the edge's interceptor); RuntimeError outside a call."""
    try:
        return _CURRENT.get()
    except LookupError:
        raise RuntimeError("no authenticated caller: is the identity interceptor installed?") from None


def bind_caller(caller: Caller) -> contextvars.Token[Caller]:
    """Make ``caller`` the current caller (the interceptor does this around each call)."""
    return _CURRENT.set(caller)


def unbind_caller(token: contextvars.Token[Caller]) -> None:
    """Undo ``bind_caller``."""
    _CURRENT.reset(token)
