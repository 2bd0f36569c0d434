"""Intake's application layer: its use cases, taking a Caller and raising ApplicationError (no gRPC here)."""
