"""An outbox relay that dies by SIGKILL right after Kafka acknowledged a page, before marking it published.

Run by tests/integration/test_outbox_relay.py as ``python -m tests.integration.support.crashing_relay``. It
publishes pages normally until page ``--crash-on-page``; for that page it writes the acknowledged outbox
ids to ``--acked-ids-file`` (fsynced) and then kills its own process: no cleanup, no producer close, no
database commit, as a power cut or the OOM killer would.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from services.core.messaging.relay import OutboxRelay


class CrashingRelay(OutboxRelay):
    """Marks pages published as usual, except page ``crash_on_page``: there it records the ids and dies."""

    def __init__(self, *args, crash_on_page: int, acked_ids_file: Path, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._crash_on_page = crash_on_page
        self._acked_ids_file = acked_ids_file
        self._pages = 0

    def _mark(self, outbox_ids: Sequence[int]) -> int:
        self._pages += 1
        if self._pages == self._crash_on_page:
            with self._acked_ids_file.open("w") as out:
                json.dump(list(outbox_ids), out)
                out.flush()
                os.fsync(out.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._mark(outbox_ids)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--crash-on-page", type=int, required=True)
    parser.add_argument("--acked-ids-file", type=Path, required=True)
    args = parser.parse_args()
    relay = CrashingRelay(sa.create_engine(args.database_url), args.bootstrap_servers, batch_size=args.batch_size,
                          crash_on_page=args.crash_on_page, acked_ids_file=args.acked_ids_file)
    relay.run(lambda: False, idle_sleep_s=0.05)  # until the crash (the test's timeout bounds one that never comes)


if __name__ == "__main__":
    main()
