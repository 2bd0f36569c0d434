"""Strict reading of a parsed JSON object: typed getters whose errors name the full field path."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from services.core.identity.errors import DirectoryError

_T = TypeVar("_T")
_KINDS: dict[type, str] = {str: "a string", int: "an integer", list: "an array", dict: "an object"}


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json.loads``: a key given twice is an error, not "the last one wins"."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DirectoryError(key, "given twice in the same object")
        result[key] = value
    return result


class Fields:
    """One JSON object being read. Call ``done()`` last: any field not read is reported as unknown."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise DirectoryError(path or "(document)", f"expected an object, got {type(value).__name__}")
        self._data: dict[str, Any] = value
        self._path = path
        self._read: set[str] = set()

    def name(self, key: str) -> str:
        """The full path of ``key`` in this object."""
        return f"{self._path}.{key}" if self._path else key

    def has(self, key: str) -> bool:
        """Whether the optional field ``key`` is present (read it with a getter if so)."""
        return key in self._data

    def get(self, key: str, kind: type[_T]) -> _T:
        """The value of ``key``, which must be present and exactly of ``kind`` (a bool is not an int)."""
        if key not in self._data:
            raise DirectoryError(self.name(key), "missing")
        value = self._data[key]
        if type(value) is not kind:
            raise DirectoryError(self.name(key), f"expected {_KINDS[kind]}, got {type(value).__name__}")
        self._read.add(key)
        return value

    def word(self, key: str, parse: Callable[[str], _T]) -> _T:
        """A vocabulary word, parsed by ``parse`` (whose ValueError becomes a DirectoryError on this field)."""
        return _parse_word(self.get(key, str), parse, self.name(key))

    def words(self, key: str, parse: Callable[[str], _T]) -> list[_T]:
        """An array of vocabulary words."""
        items = self.get(key, list)
        return [_parse_word(item, parse, f"{self.name(key)}[{index}]") for index, item in enumerate(items)]

    def base64(self, key: str) -> bytes:
        """Standard, padded, canonical base64 (one encoding per value)."""
        text = self.get(key, str)
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise DirectoryError(self.name(key), "not valid base64") from None
        if base64.b64encode(raw).decode() != text:
            raise DirectoryError(self.name(key), "not canonical base64")
        return raw

    def child(self, key: str) -> Fields:
        """A nested object."""
        return Fields(self.get(key, dict), self.name(key))

    def children(self, key: str) -> list[Fields]:
        """An array of objects."""
        items = self.get(key, list)
        return [Fields(item, f"{self.name(key)}[{index}]") for index, item in enumerate(items)]

    def done(self) -> None:
        """Fail on the first field (alphabetically) that was never read."""
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            raise DirectoryError(self.name(unknown[0]), "unknown field")

    @contextmanager
    def blame(self) -> Iterator[None]:
        """Prefix this object's path to a DirectoryError raised (with a relative field) inside the block."""
        try:
            yield
        except DirectoryError as exc:
            raise exc.within(self._path) from None


def _parse_word(value: object, parse: Callable[[str], _T], field: str) -> _T:
    if not isinstance(value, str):
        raise DirectoryError(field, f"expected a string, got {type(value).__name__}")
    try:
        return parse(value)
    except ValueError as exc:
        raise DirectoryError(field, str(exc)) from None
