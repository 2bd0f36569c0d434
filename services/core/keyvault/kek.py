"""Key-encryption keys (KEKs): what wraps data keys before the vault stores them.

:class:`KeyEncryptionKey` is the port. :class:`LocalFileKek` is the default adapter, a key in a local file; a
cloud KMS or an HSM can implement the same three members later (wrap/unwrap become KMS calls that never reveal
the KEK), and the vault does not change.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.core.envelope.errors import TamperedSectionError

KEK_BYTES = 32
NONCE_BYTES = 12


@runtime_checkable
class KeyEncryptionKey(Protocol):
    """Wraps and unwraps data keys. ``context`` is authenticated, never stored inside the wrapped bytes.

    Contract for every implementation (a KMS included): ``unwrap(wrap(k, c), c) == k``; ``unwrap`` with any
    other context or altered bytes raises :class:`TamperedSectionError` and returns nothing; ``kek_id`` names
    this KEK (stored beside each wrapped key) and reveals nothing about it.
    """

    @property
    def kek_id(self) -> str:
        """A stable, non-secret name of this KEK."""
        ...

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        """Encrypt ``data_key`` with ``context`` as associated data."""
        ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        """Decrypt what :meth:`wrap` returned for the same ``context``; raise TamperedSectionError otherwise."""
        ...


class LocalFileKek:
    """A 32-byte AES-256-GCM KEK kept in a file readable by its owner only.

    Wrapped form: a fresh 96-bit random nonce, then the AES-GCM ciphertext and tag (12 + 32 + 16 bytes).
    The file is created (mode 0600) when absent; a file with any group/other permission bit, that is not a
    regular file, or whose length is not 32 bytes is refused. Back the file up apart from the database: a
    database copy alone unwraps nothing, and losing the file loses every key it wrapped.
    """

    def __init__(self, key: bytes) -> None:
        """Use ``key`` (32 bytes) directly; :meth:`from_file` is the usual way in."""
        if len(key) != KEK_BYTES:
            raise ValueError(f"a KEK is {KEK_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        digest = hashlib.sha256(b"referralnet/kek-id/v1\x00" + key).hexdigest()
        self._kek_id = "kek-file-" + digest[:16]

    @classmethod
    def from_file(cls, path: Path) -> LocalFileKek:
        """Load the KEK in ``path``, creating it (mode 0600, fresh random key) if it does not exist."""
        with contextlib.suppress(FileExistsError):
            _create(path)
        return cls(_read_private(path))

    @property
    def kek_id(self) -> str:
        """``kek-file-`` and 16 hex digits of a SHA-256 over the key: a swapped file gets another id."""
        return self._kek_id

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        """AES-256-GCM under a fresh random nonce, ``context`` as associated data."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        """Inverse of :meth:`wrap`; TamperedSectionError if the bytes or the context differ."""
        if len(wrapped) < NONCE_BYTES + 16:
            raise TamperedSectionError(f"wrapped key of {len(wrapped)} bytes is too short for KEK {self.kek_id}")
        try:
            return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
        except InvalidTag:
            error = TamperedSectionError(f"wrapped key does not verify under KEK {self.kek_id} in this context")
        raise error from None


def _create(path: Path) -> None:
    """Write a fresh key to a new file with mode 0600; FileExistsError if the file is already there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, AESGCM.generate_key(bit_length=KEK_BYTES * 8))
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_private(path: Path) -> bytes:
    """Read the key file, checking the opened file itself (no race between the check and the read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"KEK file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise PermissionError(
                f"KEK file {path} has mode {stat.S_IMODE(info.st_mode):04o}: group/other may not have any access;"
                f" run `chmod 600 {path}` if nobody else could have read it, otherwise treat the KEK as leaked"
            )
        if info.st_size != KEK_BYTES:
            raise ValueError(f"KEK file {path} holds {info.st_size} bytes, not {KEK_BYTES}: not a KEK this code wrote")
        data = os.read(fd, KEK_BYTES)
    finally:
        os.close(fd)
    if len(data) != KEK_BYTES:
        raise ValueError(f"KEK file {path}: read {len(data)} of {KEK_BYTES} bytes")
    return data
