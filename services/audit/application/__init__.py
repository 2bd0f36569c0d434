"""Audit's use cases: writing the ledger from source records (ledger), and what auditors ask of it (queries,
compliance_report). Each takes what it needs (an engine, the tree, keys) and raises ApplicationError for
callers; the worker and the edge are thin around them."""
