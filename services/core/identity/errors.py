"""One exception family for identities: the directory, its signature, certificates and the keystore.

Messages name the field, file or id at fault. They never carry key material.
"""

from __future__ import annotations


class IdentityError(Exception):
    """Base class: an identity, key, certificate or directory could not be used."""


class DirectoryError(IdentityError, ValueError):
    """The directory (or one entry of it) is malformed; ``field`` is the JSON path of the bad field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"directory field {field!r}: {problem}")
        self.field = field
        self.problem = problem

    def within(self, prefix: str) -> DirectoryError:
        """The same error, with its field path prefixed (``organisations[3]`` + ``.regions``)."""
        return DirectoryError(f"{prefix}.{self.field}" if self.field else prefix, self.problem)


class DirectorySignatureError(IdentityError):
    """directory.json is not exactly what the network CA signed (tampered, re-signed, or signature missing)."""


class _NotFoundError(IdentityError, KeyError):
    """A KeyError (so ``except KeyError`` callers such as the envelope verifier catch it) with a plain message."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownOrganisationError(_NotFoundError):
    """No organisation with this id (or this certificate fingerprint) is in the directory."""


class UnknownKeyIdError(_NotFoundError):
    """No signing key with this key id is in the directory."""


class CertificateRejectedError(IdentityError):
    """A peer certificate does not chain to the network CA, has expired, or does not name an org and role."""


class KeystoreError(IdentityError):
    """A network folder file is missing, unreadable, of the wrong key type, or too widely readable."""


class NetworkExistsError(KeystoreError):
    """``network init`` would overwrite an existing folder and ``--force`` was not given."""
