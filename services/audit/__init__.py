"""The audit service: a tamper-evident ledger of every event, and what auditors ask of it (docs/adr/0012).

- ``python -m services.audit.edge``: AuditService over mTLS for auditors and coordinators (checkpoints,
  inclusion and consistency proofs, ledger entries, compliance reports).
- ``nameko run --config worker.yaml services.audit.worker``: reads intake's, referral's and notify's topics and
  the workers' dead-letter topics, appends every verified envelope's canonical hash to an RFC 9162 Merkle tree
  (one transaction per batch), accounts for rejected and dead-lettered records, and signs checkpoints
  that it publishes to ``referralnet.audit.checkpoints.v1``.
- ``referralnet audit replay``: the auditor's own replay from Kafka, independent of audit's database.

Layers: ``domain`` (Merkle tree, checkpoints, compliance checks: pure), ``adapters`` (tables, the SQL tree,
the source topics' catalogues), ``application`` (ledger writing, queries, compliance reports), and the
thin ``worker``/``edge`` entrypoints.
"""
