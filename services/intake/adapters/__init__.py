"""Intake's adapters: its tables and their queries, the event codec, the message conversions."""
