"""The network routing key: seals the routing sections every network service and auditor must read.

Routing facts (needs, department, urgency, minor flag, form of exploitation), consent records and custody
records carry no personal data by schema, and they must stay readable after a subject is crypto-shredded:
auditors prove afterwards that every disclosure was covered by consent. So they are sealed under a key of
the network, not of the subject (docs/adr/0011-intake-referral.md). Personal data goes only in case-file
sections, under the subject's own key from the key vault.

The keys live in ``<network>/routing/nrk-<n>.key``: 32 random bytes each, mode 0600, in a 0700 folder
(in Kubernetes, a Secret mounted there). The highest ``n`` seals new events; every version keeps opening
what it sealed, so rotation adds a file and never removes one.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

from services.core.envelope import UnknownKeyError
from services.core.identity.errors import KeystoreError
from services.core.identity.keystore import PRIVATE_FILE_MODE, make_private_dir, write_file
from services.core.keyvault.keys import DATA_KEY_BYTES, DataKey

ROUTING_FOLDER = "routing"
_FILE_NAME = re.compile(r"nrk-([1-9][0-9]{0,5})\.key")


def routing_key_id(number: int) -> str:
    """The id of the network routing key version ``number``: ``nrk-1``."""
    return f"nrk-{number}"


class NetworkRoutingKeys:
    """Every version of the network routing key (a DataKeySource); ``current()`` seals new events."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise KeystoreError("no network routing key: run `referralnet network init` or add routing/nrk-1.key")
        self._keys = {key_id: DataKey(key_id, value) for key_id, value in keys.items()}
        self._current = max(self._keys, key=lambda key_id: int(key_id.removeprefix("nrk-")))

    def current(self) -> DataKey:
        """The newest version: the one new routing sections are sealed under."""
        return self._keys[self._current]

    def key(self, key_id: str) -> DataKey:
        """The version named ``key_id``; UnknownKeyError for any other id (a subject key, a forged id)."""
        try:
            return self._keys[key_id]
        except KeyError:
            raise UnknownKeyError(f"{key_id} is not a network routing key held here") from None

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every version's id, oldest first."""
        return tuple(sorted(self._keys, key=lambda key_id: int(key_id.removeprefix("nrk-"))))


def create_routing_key(network_folder: Path) -> str:
    """Add the next routing key version under ``network_folder`` and return its id (0600, never overwritten)."""
    folder = Path(network_folder) / ROUTING_FOLDER
    if not folder.exists():
        make_private_dir(folder)
    numbers = [int(match.group(1)) for path in folder.iterdir() if (match := _FILE_NAME.fullmatch(path.name))]
    number = max(numbers, default=0) + 1
    write_file(folder / f"{routing_key_id(number)}.key", secrets.token_bytes(DATA_KEY_BYTES), PRIVATE_FILE_MODE)
    return routing_key_id(number)


def load_routing_keys(network_folder: Path) -> NetworkRoutingKeys:
    """Every ``routing/nrk-<n>.key`` under ``network_folder``; refuses symlinks, loose modes and wrong sizes."""
    folder = Path(network_folder) / ROUTING_FOLDER
    if not folder.is_dir():
        raise KeystoreError(f"{folder} is missing: is this a network folder (referralnet network init)?")
    keys: dict[str, bytes] = {}
    for path in sorted(folder.iterdir()):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            continue
        keys[routing_key_id(int(match.group(1)))] = _read_key_file(path)
    return NetworkRoutingKeys(keys)


def _read_key_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise KeystoreError(f"{path}: cannot open ({error.strerror}); symlinks are refused") from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeystoreError(f"{path} is readable by group or others: chmod 600 it")
        data = handle.read(DATA_KEY_BYTES + 1)
    if len(data) != DATA_KEY_BYTES:
        raise KeystoreError(f"{path} must hold exactly {DATA_KEY_BYTES} bytes, not {len(data)}")
    return data
