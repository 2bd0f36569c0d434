"""The canonical form of a projection's state, and the state hash computed over it.

Two rebuilds agree exactly when their state hashes are equal, so the form must not depend on dict
insertion order, set iteration order or the Python version. It is a subset of JSON:

- values: ``null``, ``true``, ``false``, integers (any size), strings, arrays, objects. Floats are
  refused (their text is not unique across implementations); so are bytes (hex-encode them first) and
  anything else. Tuples are arrays. Sets and frozensets are arrays sorted ascending (their elements must
  be all strings or all integers).
- objects: keys must be strings (an integer key is refused, because ``1`` and ``"1"`` would collide);
  members are written sorted by key, comparing Unicode code points.
- text: no whitespace outside strings (``,`` and ``:`` separators); ASCII only, every non-ASCII
  character written as ``\\uXXXX`` (lowercase hex, UTF-16 surrogate pairs beyond U+FFFF), control
  characters as ``\\n``, ``\\r``, ``\\t``, ``\\b``, ``\\f`` or ``\\u00XX``, plus ``\\"`` and ``\\\\`` -
  exactly Python's ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``.

``state hash = lowercase hex SHA-256( "referralnet/projection-state/v1" || 0x00 || name_utf8 || 0x00 ||
u32be(version) || canonical_json )``. The projection's name and version are bound in, so two
projections (or two versions of one whose ``apply`` changed) never produce comparable hashes by accident.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping

STATE_DOMAIN = b"referralnet/projection-state/v1\x00"


class CanonicalFormError(TypeError):
    """A state value outside the canonical form (a float, bytes, a non-string key...)."""


def canonical_json(value: object) -> bytes:
    """``value`` in the canonical form described in the module docstring."""
    text = json.dumps(_normalised(value, "state"), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return text.encode("ascii")


def state_hash(name: str, version: int, state: object) -> str:
    """The state hash of a projection named ``name`` at ``version`` whose state is ``state``."""
    digest = hashlib.sha256(STATE_DOMAIN + name.encode() + b"\x00" + struct.pack(">I", version))
    digest.update(canonical_json(state))
    return digest.hexdigest()


def _normalised(value: object, where: str) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping):
        normalised = {}
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"{where}: object keys must be strings, not {type(key).__name__}"
                raise CanonicalFormError(msg)
            normalised[key] = _normalised(item, f"{where}.{key}")
        return normalised
    if isinstance(value, list | tuple):
        return [_normalised(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        kinds = {str if isinstance(item, str) else int if _is_int(item) else None for item in value}
        if len(kinds) > 1 or None in kinds:
            msg = f"{where}: a set must hold only strings or only integers"
            raise CanonicalFormError(msg)
        return sorted(value)
    msg = f"{where}: {type(value).__name__} has no canonical form (use int, str, list, dict, set)"
    raise CanonicalFormError(msg)


def _is_int(item: object) -> bool:
    return isinstance(item, int) and not isinstance(item, bool)
