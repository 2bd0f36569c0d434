"""Database drivers that cooperate with eventlet inside ``nameko run``.

psycopg 3 waits for the server with a C ``poll()`` unless it sees *gevent*'s monkey patching; under
eventlet that call blocks the whole hub. Measured: four concurrent ``pg_sleep(0.5)`` in four
greenthreads took 2.0 s, one after another, and a row-lock wait between two workers of one process
would never end (the lock holder cannot run). Its ``wait_select`` uses ``select.select``, which eventlet
does patch: the same four sleeps take 0.5 s. So once eventlet has patched ``select``, psycopg is told
to use it.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def cooperative_psycopg() -> bool:
    """Make psycopg wait through eventlet's green ``select`` when eventlet patched it; True if so."""
    from eventlet import patcher  # noqa: PLC0415 -- imported only once nameko has monkey-patched
    from psycopg import waiting  # noqa: PLC0415

    if not patcher.is_monkey_patched("select"):
        return False
    if waiting.wait is not waiting.wait_select:
        waiting.wait = waiting.wait_select
        log.info("psycopg now waits through eventlet's green select (cooperative database I/O)")
    return True
