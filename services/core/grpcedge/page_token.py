"""The opaque page token of a listing RPC: where the previous page ended (a time and an id).

The lists it serves are ordered by a time in Unix microseconds, then by an id (ListHandoffs: offer time and
handoff id; ListDeliveries: creation time and delivery id). The token is URL-safe base64 of
``v1:<time_us>:<id>``. Clients must treat it as opaque; a token that does not decode is an INVALID_ARGUMENT
naming ``page_token``.
"""

from __future__ import annotations

import base64
import binascii
import re

from services.core.application import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
_VERSION = "v1"
_POSITION = re.compile(r"v1:([0-9]{1,19}):([A-Za-z0-9-]{1,64})")
MAX_TOKEN_CHARS = 200


def encode_page_token(at_micros: int, item_id: str) -> str:
    """The token of the page that follows the item at ``at_micros`` with id ``item_id``."""
    return base64.urlsafe_b64encode(f"{_VERSION}:{at_micros}:{item_id}".encode()).decode()


def decode_page_token(token: str) -> tuple[int, str] | None:
    """(time, id) of a token; None for the empty token; InvalidArgument when malformed."""
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


def page_size(value: int) -> int:
    """A listing request's ``page_size``: 1-500; 0 means 100 (InvalidArgument naming ``page_size`` otherwise)."""
    if value == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", es=f"debe estar entre 1 y {MAX_PAGE_SIZE} (0: {DEFAULT_PAGE_SIZE})",
                              en=f"must be 1 to {MAX_PAGE_SIZE} (0: {DEFAULT_PAGE_SIZE})")
    return value
