"""The opaque page token of ListHandoffs: where the previous page ended (offer time and handoff id).

It is URL-safe base64 of ``v1:<offered_at_us>:<handoff_id>``. Clients must treat it as opaque; a token
that does not decode is an INVALID_ARGUMENT naming ``page_token``.
"""

from __future__ import annotations

import base64
import binascii
import re

from services.core.application import InvalidArgument

_VERSION = "v1"
_POSITION = re.compile(r"v1:([0-9]{1,19}):([A-Za-z0-9-]{1,64})")
MAX_TOKEN_CHARS = 200


def encode_page_token(offered_at: int, handoff_id: str) -> str:
    """The token of the page that follows the handoff offered at ``offered_at`` with id ``handoff_id``."""
    return base64.urlsafe_b64encode(f"{_VERSION}:{offered_at}:{handoff_id}".encode()).decode()


def decode_page_token(token: str) -> tuple[int, str] | None:
    """(offered_at, handoff_id) of a token; None for the empty token; InvalidArgument when malformed."""
    if not token:
        return None
    try:
        if len(token) > MAX_TOKEN_CHARS:
            raise ValueError(token)
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (ValueError, UnicodeError, binascii.Error):
        text = ""
    match = _POSITION.fullmatch(text)
    if match is None:
        raise InvalidArgument("page_token", es="el token de página no es válido: use el de la respuesta anterior",
                              en="the page token is not valid: use the one from the previous response")
    return int(match.group(1)), match.group(2)
