"""Intake's domain: consent and its coverage, request validation, the minor rule, fingerprints, ids (pure)."""
