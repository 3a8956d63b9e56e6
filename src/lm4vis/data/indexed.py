"""Datasets whose split is a table of source indices: subsets and limits cut the table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from torch.utils.data import Dataset

T = TypeVar("T", bound="IndexedDataset")


class IndexedDataset(Dataset):
    """A dataset whose items are ``indices[i]`` of a source; subclasses set ``self.indices``
    (a 1-D int64 array) and read the source item ``self.indices[i]`` in ``__getitem__``."""

    indices: np.ndarray

    def subset(self: T, positions: Sequence[int] | np.ndarray) -> T:
        """The same dataset restricted to the items at ``positions`` (in that order).

        Args:
            positions: item positions in this dataset.
        """
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.indices = self.indices[np.asarray(positions, dtype=np.int64)]
        return out

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


__all__ = ["IndexedDataset"]
