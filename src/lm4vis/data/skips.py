"""Bad input is counted, never silent: one log of skipped files and samples per dataset.

Every loader takes a policy per kind of bad input (``"skip"`` or ``"fail"``). ``fail`` raises
at once with a message that names the file, the problem and the fix; ``skip`` drops the item,
counts it under a short reason, keeps the first few details, and warns once per reason. The
engine copies ``dataset.skips.to_dict()`` into the run summary.

Problems found while indexing a dataset (in the main process) are counted on the dataset's own
`SkipLog`. Problems that only show when an item is read (a video that fails to decode) happen
in DataLoader workers, whose counters the main process never sees: there ``__getitem__``
returns a `Skipped` marker, and `drop_skipped` (called by the task's collate) removes the
markers and reports their reasons in the batch, where the engine adds them up.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

Policy = Literal["skip", "fail"]
POLICIES: tuple[str, ...] = ("skip", "fail")
#: How many example details are kept per reason.
MAX_EXAMPLES = 5


class BadInputError(ValueError):
    """Input that cannot be used under the ``fail`` policy; the message names the fix."""


def check_policy(name: str, value: str) -> str:
    if value not in POLICIES:
        raise ValueError(f"{name}={value!r} is unknown; choose skip or fail")
    return value


@dataclass
class SkipLog:
    """Counts of skipped items by reason, with a few examples of each.

    Args:
        dataset: name used in messages.
    """

    dataset: str = ""
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def handle(self, policy: str, reason: str, detail: str, fix: str = "") -> None:
        """Apply ``policy`` to one bad item: raise `BadInputError` (``fail``) or count it.

        Args:
            policy: ``skip`` or ``fail``.
            reason: short key, e.g. ``nan-coordinates``, ``unreadable-ply``.
            detail: which file or sample, and what is wrong with it.
            fix: what the user can do (named in the error, and in the ``skip`` warning).
        """
        if policy == "fail":
            hint = f"; {fix}" if fix else ""
            raise BadInputError(f"{self.dataset}: {detail}{hint}")
        self.skip(reason, detail)

    def skip(self, reason: str, detail: str, count: int = 1) -> None:
        if reason not in self.counts:
            log.warning("%s: skipping %s (%s); further skips of this kind are counted in the run "
                        "summary", self.dataset or "dataset", detail, reason)
        self.counts[reason] += count
        kept = self.examples.setdefault(reason, [])
        if len(kept) < MAX_EXAMPLES:
            kept.append(detail)

    def merge(self, other: SkipLog | dict[str, Any]) -> None:
        data = other.to_dict() if isinstance(other, SkipLog) else other
        for reason, n in data.get("counts", {}).items():
            self.counts[reason] += int(n)
            kept = self.examples.setdefault(reason, [])
            for d in data.get("examples", {}).get(reason, []):
                if len(kept) < MAX_EXAMPLES:
                    kept.append(d)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "counts": dict(self.counts),
                "examples": {k: list(v) for k, v in self.examples.items()}}


@dataclass(frozen=True)
class Skipped:
    """Returned by ``__getitem__`` in place of an item that turned out unreadable."""

    reason: str
    detail: str


class Counted(dict):
    """A dict item that is used but was repaired (a short video padded with repeated frames):
    `drop_skipped` keeps it, as a plain dict, and counts it under ``reason``.

    Args:
        item: the item.
        reason: short key, e.g. ``short-clip-padded``.
    """

    def __init__(self, item: dict[str, Any], reason: str) -> None:
        super().__init__(item)
        self.reason = reason


def drop_skipped(items: list[Any]) -> tuple[list[Any], dict[str, int]]:
    """Remove `Skipped` markers from a list of items; returns (items, counts by reason).
    `Counted` items are kept (as plain dicts) and counted too."""
    kept, counts = [], Counter()
    for item in items:
        if isinstance(item, Skipped):
            counts[item.reason] += 1
        elif isinstance(item, Counted):
            counts[item.reason] += 1
            kept.append(dict(item))
        else:
            kept.append(item)
    return kept, dict(counts)


__all__ = ["Policy", "POLICIES", "BadInputError", "SkipLog", "Skipped", "Counted", "drop_skipped",
           "check_policy"]
