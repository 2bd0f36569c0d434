"""The benchmark-only switch that turns envelope crypto off, and the guard that keeps it out of real networks.

bench.e2e measures what the envelope's cryptography costs the whole network by running the same pipeline
twice, the second time with sealing and verification replaced by a "null" algorithm. That is only ever
honoured when ALL of these hold, checked where a :class:`~services.core.envelope.Sealer` or
:class:`~services.core.envelope.Verifier` is built:

1. the environment variable ``REFERRALNET_BENCH_NULL_CRYPTO`` is set, and its value is exactly the network
   id of the directory the process runs under (so a stray ``=1`` or a copied value does nothing);
2. that network id starts with :data:`BENCH_NETWORK_PREFIX` (``bench-nocrypto-``), which only
   :func:`bench_network_id` makes, and which ``referralnet network init``, deploy/ and LocalNetwork never use.

Otherwise crypto stays on; when the variable is set but refused, an ERROR says so (once per network id).
When honoured, a WARNING says so on every Sealer or Verifier built.

Null envelopes carry their own format version, :data:`NULL_FORMAT_VERSION`, in place of 1: sections are
plaintext followed by 16 zero bytes where the GCM tag would be, nonces are zero, the signature is 64 zero
bytes; digests, the signing input and the canonical hash are computed as usual (with this version byte),
so the event store and the audit ledger work unchanged. A normal verifier rejects such an envelope as
an unsupported version (UnsupportedVersionError); only a verifier with the switch honoured accepts it,
and such a verifier still verifies version-1 envelopes in full.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys

ENVIRONMENT_VARIABLE = "REFERRALNET_BENCH_NULL_CRYPTO"
BENCH_NETWORK_PREFIX = "bench-nocrypto-"
NULL_FORMAT_VERSION = 0x6E6F  # "no": never a version a real envelope carries
NULL_SIGNATURE = bytes(64)

_log = logging.getLogger(__name__)
_refused: set[str] = set()


def bench_network_id() -> str:
    """A fresh network id that may run with crypto off (``bench-nocrypto-<12 hex>``, a valid slug)."""
    return f"{BENCH_NETWORK_PREFIX}{secrets.token_hex(6)}"


def null_crypto_enabled(network_id: str | None) -> bool:
    """Whether envelopes of this network are sealed and verified with crypto OFF (see the module doc)."""
    wanted = os.environ.get(ENVIRONMENT_VARIABLE)
    if not wanted:
        return False
    if network_id and wanted == network_id and network_id.startswith(BENCH_NETWORK_PREFIX):
        message = (f"ENVELOPE CRYPTO IS OFF ({ENVIRONMENT_VARIABLE}={wanted}): benchmark network {network_id}; "
                   "events are neither encrypted nor signed")
        _log.warning(message)
        print(f"WARNING: {message}", file=sys.stderr, flush=True)
        return True
    key = network_id or ""
    if key not in _refused:
        _refused.add(key)
        _log.error("%s is set but refused for network %r: crypto stays on (only a benchmark network %s<hex> "
                   "whose id the variable names exactly may turn it off)", ENVIRONMENT_VARIABLE, network_id,
                   BENCH_NETWORK_PREFIX)
    return False
