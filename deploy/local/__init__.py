"""The local stack: a real Apache Kafka (KRaft) and a throwaway PostgreSQL, started on 127.0.0.1.

Run ``python -m deploy.local --help``. Servers are started by this package, never by hand, so tests,
benchmarks and the demo see exactly the same stack a new user does.
"""
