"""Envelope costs for 1 KiB case files, beside the raw primitives they are built from, in one run.

    python -m bench.envelope [--events N]

seal_sign: header encode + AES-256-GCM of a routing section and a 1 KiB case file + digests + Ed25519
sign + encode, one at a time. open: decrypt the case file of a verified envelope (key lookup included). verify: parse,
digest checks, header decode, Ed25519 verify, one at a time; verify_batched: the same through
``Verifier.verify_many``. The raw figures time the bare cryptography calls on the same sizes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.report import report
from services.core.envelope.envelope import EnvelopeSigner, Sealer
from services.core.envelope.format import SectionKind
from services.core.envelope.header import EventHeader, new_event_id, now_micros
from services.core.envelope.verification import Opener, Verifier
from services.core.keyvault.keys import DataKey

CASE_FILE_BYTES = 1024
ROUTING = b"\x08\x01\x08\x03\x10\x11\x18\x03\x20\x01"  # a RoutingFacts-sized section
ORG, KEY_ID = "pol-mdd-01", "pol-mdd-01#sig-1"
REPEATS = 3


class _OneKeyDirectory:
    def __init__(self, public_key: Ed25519PublicKey) -> None:
        self._public_key = public_key

    def signing_key(self, key_id: str) -> tuple[str, Ed25519PublicKey]:
        if key_id != KEY_ID:
            raise KeyError(key_id)
        return ORG, self._public_key


def _rate(count: int, action: Callable[[], object]) -> float:
    """Operations per second: the median of REPEATS timed runs of ``action`` (which does ``count`` ops)."""
    rates = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def _headers(count: int) -> list[EventHeader]:
    return [EventHeader(event_id=new_event_id(), event_type="ReferralSubmitted", schema_version=1,
                        stream_id=f"ref-{uuid.uuid4().hex}", stream_sequence=1,
                        occurred_at_unix_micros=now_micros(), producer_org=ORG, producer_service="intake",
                        signing_key_id=KEY_ID) for _ in range(count)]


def run(events: int) -> dict[str, float]:
    """Measure everything on ``events`` envelopes; return the figures."""
    private_key = Ed25519PrivateKey.generate()
    sealer = Sealer(EnvelopeSigner(ORG, KEY_ID, private_key))
    verifier = Verifier(_OneKeyDirectory(private_key.public_key()))
    opener = Opener()
    routing_key = DataKey(f"dk-{uuid.uuid4().hex}", os.urandom(32))
    case_key = DataKey(f"dk-{uuid.uuid4().hex}", os.urandom(32))
    case_file = os.urandom(CASE_FILE_BYTES)
    headers = _headers(events)
    sections = {SectionKind.ROUTING: (routing_key, ROUTING), SectionKind.CASE_FILE: (case_key, case_file)}

    wires: list[bytes] = []
    seal_sign = _rate(events, lambda: wires.__setitem__(slice(None), [sealer.seal(h, sections) for h in headers]))
    verify = _rate(events, lambda: [verifier.verify(wire) for wire in wires])
    verify_batched = _rate(events, lambda: verifier.verify_many(wires))
    verified = [verifier.verify(wire) for wire in wires]
    open_rate = _rate(events, lambda: [opener.open(env, SectionKind.CASE_FILE, case_key) for env in verified])
    verifier.close()

    signing_inputs = [env.signing_input for env in verified]
    signatures = [private_key.sign(data) for data in signing_inputs]
    public_key = private_key.public_key()
    raw_sign = _rate(events, lambda: [private_key.sign(data) for data in signing_inputs])
    pairs = list(zip(signatures, signing_inputs, strict=True))
    raw_verify = _rate(events, lambda: [public_key.verify(signature, data) for signature, data in pairs])
    aes = AESGCM(case_key.key)
    nonce, associated = os.urandom(12), verified[0].header_bytes + b"\x02" * 36
    sealed = aes.encrypt(nonce, case_file, associated)
    raw_decrypt = _rate(events, lambda: [aes.decrypt(nonce, sealed, associated) for _ in range(events)])
    return {
        "seal_sign_per_s": round(seal_sign), "open_per_s": round(open_rate), "verify_per_s": round(verify),
        "verify_batched_per_s": round(verify_batched), "raw_ed25519_sign_per_s": round(raw_sign),
        "raw_aesgcm_decrypt_per_s": round(raw_decrypt), "raw_ed25519_verify_per_s": round(raw_verify),
        "seal_sign_ratio": round(seal_sign / raw_sign, 3),
        "open_ratio": round(open_rate / raw_decrypt, 3),
        "verify_batched_over_verify": round(verify_batched / verify, 3),
        "envelope_bytes": len(wires[0]), "envelope_overhead_bytes": len(wires[0]) - CASE_FILE_BYTES - len(ROUTING),
    }


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    report("envelope", run(parser.parse_args().events))


if __name__ == "__main__":
    main()
