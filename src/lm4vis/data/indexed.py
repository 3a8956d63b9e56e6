"""Subsets and limits of datasets: ``limit`` in terms of ``subset``, and datasets whose split
is a table of source indices, where a subset cuts the table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from torch.utils.data import Dataset

T = TypeVar("T", bound="SubsetDataset")


class SubsetDataset(Dataset):
    """A dataset that can be cut to some of its items: subclasses implement ``subset``."""

    def subset(self: T, positions: Sequence[int] | np.ndarray) -> T:
        """The same dataset restricted to the items at ``positions`` (in that order)."""
        raise NotImplementedError

    def limit(self: T, count: int | None) -> T:
        """The first ``count`` items (all of them when None).

        Args:
            count: number of items to keep; must be positive.
        """
        if count is None:
            return self
        if count <= 0:
            raise ValueError(f"limit must be a positive number of items, got {count}")
        return self.subset(np.arange(min(count, len(self))))


class IndexedDataset(SubsetDataset):
    """A dataset whose items are ``indices[i]`` of a source; subclasses set ``self.indices``
    (a 1-D int64 array) and ``self.source_targets`` (the label of every source index), and
    read the source item ``self.indices[i]`` in ``__getitem__``."""

    indices: np.ndarray
    source_targets: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def targets(self) -> np.ndarray:
        """Label of every item, in item order (no item is read)."""
        return self.source_targets[self.indices]

    def subset(self: T, positions: Sequence[int] | np.ndarray) -> T:
        """The same dataset restricted to the items at ``positions`` (in that order).

        Args:
            positions: item positions in this dataset.
        """
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.indices = self.indices[np.asarray(positions, dtype=np.int64)]
        return out


__all__ = ["SubsetDataset", "IndexedDataset"]
