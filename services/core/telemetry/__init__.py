"""OpenTelemetry for the network: ids and types in spans, never personal data."""
