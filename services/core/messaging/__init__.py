"""Kafka plumbing shared by every service: topic names, the outbox relay, dead letters."""
