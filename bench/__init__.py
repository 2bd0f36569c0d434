"""Benchmarks: one module per figure set, each runnable alone as ``python -m bench.<name>``.

Each module starts what it needs (local Kafka, PostgreSQL) and stops it, prints a table, and writes
``bench/results/<name>.json``: a flat JSON object of figure name -> number. ``python -m bench`` runs all.
"""
