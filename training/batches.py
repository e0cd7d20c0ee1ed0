"""Deterministic bucketed batch order: batch k of a run depends only on (seed, k).

That makes resuming exact without saving sampler state: step N of a resumed run sees the
same batch it would have seen had the run never stopped.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache


class BucketBatches:
    """Batches of item indices that share a bucket, reshuffled every epoch."""

    def __init__(self, buckets: Sequence[tuple[int, ...]], batch_size: int, seed: int) -> None:
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, bucket in enumerate(buckets):
            groups.setdefault(bucket, []).append(index)
        self._groups = [groups[key] for key in sorted(groups)]
        self._batch_size = batch_size
        self._seed = seed
        self.per_epoch = sum(-(-len(g) // batch_size) for g in self._groups)

    def batch_at(self, step: int) -> list[int]:
        """Item indices for the zero-based step."""
        epoch, offset = divmod(step, self.per_epoch)
        return list(self._epoch(epoch)[offset])

    @lru_cache(maxsize=2)  # noqa: B019 - one sampler per run; bounded cache
    def _epoch(self, epoch: int) -> tuple[tuple[int, ...], ...]:
        rng = random.Random(f"{self._seed}:{epoch}")
        batches: list[tuple[int, ...]] = []
        for group in self._groups:
            order = group[:]
            rng.shuffle(order)
            for start in range(0, len(order), self._batch_size):
                batches.append(tuple(order[start : start + self._batch_size]))
        rng.shuffle(batches)
        return tuple(batches)
