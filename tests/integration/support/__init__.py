"""Helpers the integration tests run as separate processes."""
