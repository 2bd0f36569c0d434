"""core service."""
