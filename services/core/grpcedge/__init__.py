"""The gRPC edge of every service: mTLS server, caller identity, errors, health, reflection, graceful stop.

Modules:

- ``caller``: ``Caller(org_id, role, language)`` and ``caller_of()``, what servicers and use cases read.
- ``deadline``: ``call_deadline_remaining()`` / ``remaining_seconds(cap)``, the current call's deadline.
- ``interceptor``: ``EdgeInterceptor``, peer certificate -> directory org -> ``Caller``; ``ApplicationError``
  -> status code (``STATUS_OF``) in the caller's language; anything else -> INTERNAL, logged without its text.
- ``settings``: ``EdgeSettings.from_env`` (``GRPC_LISTEN``, ``NETWORK_DIR``, ``GRPC_GRACE_SECONDS``,
  ``GRPC_MAX_WORKERS``, ``OUTBOX_RELAY``), ``env_required``, ``kafka_bootstrap_from_env``.
- ``server``: ``build_edge`` / ``build_server`` (mTLS, interceptor, health, reflection) and ``run_edge``
  (serve until SIGTERM, then a graceful stop of the server and its ``BackgroundTask``s).
- ``relay_task``: ``RelayTask``, the outbox relay in a thread of the edge, with ``wake()`` after a commit.
- ``client``: ``org_channel`` (an org's mTLS channel to an edge) and ``language_metadata``.

Edges are plain grpcio processes: nothing in this package imports eventlet or nameko.
"""
