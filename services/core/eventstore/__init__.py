"""Each service's event store: streams of sealed events with optimistic concurrency, and the outbox."""
