"""Audit's adapters: its tables and migrations (tables, database), the SQL-stored Merkle tree and checkpoints
(tree_store), and the decoding of the source topics' events (source)."""
