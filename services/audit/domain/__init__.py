"""Audit's domain (pure, no I/O): the RFC 9162 Merkle tree and its proofs (merkle), signed checkpoints
(checkpoint), and the compliance checks over verified events (compliance)."""
