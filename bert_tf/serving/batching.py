"""Dynamic batching: requests that arrive close together run as one batch.

A request waits at most `batch_timeout` for others of its signature and length bucket
(the project's buckets, `bucketing.bucket_length`, of its longest example estimated in
word pieces) until their examples fill `max_batch_size`; the group runs as one call of
the model in the one model thread, and each caller gets back exactly its own rows. A
request larger than `max_batch_size` runs alone. More than `max_queue` requests waiting:
`QueueFull` (the server answers 503 with Retry-After), so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import time
from collections.abc import Callable

import numpy as np

from bert_tf.training import bucketing

# Word pieces per whitespace word, for grouping only (English WordPiece: about 1.3).
PIECES_PER_WORD = 1.3


class QueueFull(Exception):
    """More requests wait than the server keeps."""


@dataclasses.dataclass
class Pending:
    """A request waiting for its batch."""

    signature: str
    columns: dict[str, np.ndarray]
    rows: int
    bucket: int
    queued: float
    future: asyncio.Future


class Batcher:
    """Collects requests into batches and runs them, one at a time, in one thread."""

    def __init__(self, run: Callable[[str, dict], dict], *, max_batch_size: int,
                 batch_timeout: float, max_queue: int, max_seq_length: int):
        self.run, self.max_batch_size = run, max_batch_size
        self.batch_timeout, self.max_queue = batch_timeout, max_queue
        self.max_seq_length = max_seq_length
        self.pending: list[Pending] = []
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        self._wake = asyncio.Event()
        self._model_thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="model")

    def bucket(self, words: int) -> int:
        """The length bucket of an example of `words` whitespace words ([CLS], [SEP]s)."""
        pieces = min(int(words * PIECES_PER_WORD) + 3, self.max_seq_length)
        return bucketing.bucket_length(pieces, self.max_seq_length)

    async def submit(self, signature: str, columns: dict[str, np.ndarray],
                     words: int) -> dict[str, np.ndarray]:
        """The signature's outputs for this request's rows (awaited until its batch ran)."""
        if len(self.pending) >= self.max_queue:
            raise QueueFull(f"{len(self.pending)} requests are waiting (--max_queue)")
        future = asyncio.get_running_loop().create_future()
        rows = len(next(iter(columns.values())))
        self.pending.append(Pending(signature, columns, rows, self.bucket(words),
                                    time.monotonic(), future))
        self._wake.set()
        return await future

    async def run_forever(self) -> None:
        """Forms and runs batches until cancelled."""
        while True:
            await self._wake.wait()
            if not self.pending:
                self._wake.clear()
                continue
            first = self.pending[0]
            deadline = first.queued + self.batch_timeout
            while (self._group_rows(first) < self.max_batch_size
                   and (left := deadline - time.monotonic()) > 0):
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), left)
                except TimeoutError:
                    break
            await self._run(self._take_group(first))

    def _same_group(self, first: Pending, other: Pending) -> bool:
        return other.signature == first.signature and other.bucket == first.bucket

    def _group_rows(self, first: Pending) -> int:
        return sum(p.rows for p in self.pending if self._same_group(first, p))

    def _take_group(self, first: Pending) -> list[Pending]:
        """`first` and, in arrival order, the requests of its group that fit beside it."""
        group, rows = [], 0
        for pending in self.pending:
            if self._same_group(first, pending) and (
                    not group or rows + pending.rows <= self.max_batch_size):
                group.append(pending)
                rows += pending.rows
        taken = {id(pending) for pending in group}
        self.pending = [pending for pending in self.pending if id(pending) not in taken]
        return group

    async def _run(self, group: list[Pending]) -> None:
        columns = {name: np.concatenate([p.columns[name] for p in group])
                   for name in group[0].columns}
        self.batch_sizes[sum(p.rows for p in group)] += 1
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._model_thread, self.run, group[0].signature, columns)
        except Exception as error:  # the callers get the model's error, the server lives on
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        start = 0
        for pending in group:
            rows = slice(start, start + pending.rows)
            if not pending.future.done():
                pending.future.set_result({name: value[rows] for name, value in outputs.items()})
            start += pending.rows
