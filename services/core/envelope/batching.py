"""Spreading a batch of envelope work over a thread pool.

Ed25519 signing and verification in ``cryptography`` release the GIL, so on N cores a batch split into
N chunks runs up to N times faster; the Python-level parts still take turns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_In = TypeVar("_In")
_Out = TypeVar("_Out")

# Below this many items a batch runs in the calling thread: handing work to the pool costs more.
PARALLEL_THRESHOLD = 64


class ChunkedPool:
    """A lazily started pool of one thread per core that maps a function over chunks of a batch."""

    def __init__(self, workers: int | None = None, name: str = "envelope") -> None:
        self._workers = workers or os.cpu_count() or 1
        self._name = name
        self._pool: ThreadPoolExecutor | None = None

    def map(self, function: Callable[[_In], _Out], items: Sequence[_In]) -> list[_Out]:
        """``[function(item) for item in items]``, in order, computed in parallel chunks when it pays."""
        if len(items) < PARALLEL_THRESHOLD or self._workers == 1:
            return [function(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix=self._name)
        size = -(-len(items) // self._workers)
        chunks = [items[start:start + size] for start in range(0, len(items), size)]
        results: list[_Out] = []
        for chunk_results in self._pool.map(lambda chunk: [function(item) for item in chunk], chunks):
            results.extend(chunk_results)
        return results

    def close(self) -> None:
        """Stop the threads, if they were started."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
