"""Bad input is counted, never silent: one log of skipped files and samples per dataset.

Every loader takes a policy per kind of bad input (``"skip"`` or ``"fail"``). ``fail`` raises
at once with a message that names the file, the problem and the fix; ``skip`` drops the item,
counts it under a short reason, keeps the first few details, and warns once per reason. The
engine copies ``dataset.skips.to_dict()`` into the run summary.

Problems found while indexing a dataset (in the main process) are counted on the dataset's own
`SkipLog`. Problems that only show when an item is read (a video that fails to decode) happen
in DataLoader workers, whose counters the main process never sees: there ``__getitem__``
returns a `Skipped` marker, and `drop_skipped` (called by the task's collate) removes the
markers and reports their reasons in the batch.

The run summary counts *distinct items*, by split and reason, however many epochs (or
validation passes, or resumes) read them again: the engine's loaders stamp each marker with the
item's index (`with_key`), report the stamped keys beside the batch's counts
(``batch[SKIPPED_ITEMS]``, `item_keys`), and the engine keeps the set of keys per reason. A
count a collate makes without a marker (no key to tell items apart) is taken per pass over the
data: the largest count of any one epoch.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
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


#: Batch key under which the engine's loaders report the stamped keys of skipped items.
SKIPPED_ITEMS = "skipped_items"


@dataclass(frozen=True)
class Skipped:
    """Returned by ``__getitem__`` in place of an item that turned out unreadable.

    Args:
        reason: short key the skip is counted under.
        detail: which file or sample, and what is wrong with it.
        key: the item's index in its split; the engine's loaders set it (`with_key`).
    """

    reason: str
    detail: str
    key: Any = None


class Counted(dict):
    """A dict item that is used but was repaired (a short video padded with repeated frames):
    `drop_skipped` keeps it, as a plain dict, and counts it under ``reason``.

    Args:
        item: the item.
        reason: short key, e.g. ``short-clip-padded``.
    """

    def __init__(self, item: dict[str, Any], reason: str, key: Any = None) -> None:
        super().__init__(item)
        self.reason = reason
        self.key = key  # the item's index in its split; the engine's loaders set it (`with_key`)

    def __reduce__(self) -> Any:  # to and from DataLoader workers with reason and key
        return (Counted, (dict(self), self.reason, self.key))


def with_key(item: Any, key: Any) -> Any:
    """``item`` with ``key`` (its index in the split) stamped on it when it is a `Skipped` or
    `Counted` marker; any other item unchanged. The marker is copied: a dataset that keeps its
    items in memory keeps them as they were."""
    if isinstance(item, Skipped):
        return replace(item, key=key)
    if isinstance(item, Counted):
        return Counted(item, item.reason, key)
    return item


def item_keys(items: list[Any]) -> dict[str, list[Any]]:
    """The stamped keys of the markers among ``items``, by reason (markers without one left out)."""
    keys: dict[str, list[Any]] = {}
    for item in items:
        if isinstance(item, (Skipped, Counted)) and item.key is not None:
            keys.setdefault(item.reason, []).append(item.key)
    return keys


class SkipCounter:
    """Distinct skipped items of a run, by split and reason (see the module docstring).

    ``add`` takes a batch's ``skipped`` counts and stamped keys; ``end_pass`` closes an epoch
    (or a validation pass) for the counts that came without keys. Its state is plain lists and
    ints, so that it rides in a checkpoint read with ``weights_only=True``.
    """

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, set]] = {}
        self.best_pass: dict[str, Counter] = {}
        self._pass: dict[str, Counter] = {}

    def add(self, split: str, counts: dict[str, int], keys: dict[str, list[Any]] | None = None) -> None:
        keys = keys or {}
        for reason, n in counts.items():
            stamped = keys.get(reason, [])
            self.keys.setdefault(split, {}).setdefault(str(reason), set()).update(stamped)
            unkeyed = int(n) - len(stamped)
            if unkeyed > 0:
                self._pass.setdefault(split, Counter())[str(reason)] += unkeyed

    def end_pass(self, split: str) -> None:
        done = self._pass.pop(split, Counter())
        best = self.best_pass.setdefault(split, Counter())
        for reason, n in done.items():
            best[reason] = max(best[reason], n)

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {reason: distinct items}}``, splits and reasons with nothing left out."""
        out: dict[str, dict[str, int]] = {}
        for split in sorted(set(self.keys) | set(self.best_pass) | set(self._pass)):
            pending = self._pass.get(split, Counter())
            reasons = set(self.keys.get(split, {})) | set(self.best_pass.get(split, {})) | set(pending)
            row = {r: len(self.keys.get(split, {}).get(r, ()))
                   + max(self.best_pass.get(split, Counter())[r], pending[r]) for r in sorted(reasons)}
            row = {r: n for r, n in row.items() if n}
            if row:
                out[split] = row
        return out

    def merge(self, state: dict[str, Any]) -> None:
        """Add another rank's counter (its `state_dict`). Keys are united, so an item two ranks
        both read counts once; counts without keys are added, since ranks read disjoint shares
        of each pass."""
        other = SkipCounter()
        other.load_state_dict(state)
        for split, reasons in other.keys.items():
            for reason, keys in reasons.items():
                self.keys.setdefault(split, {}).setdefault(reason, set()).update(keys)
        for mine, theirs in ((self.best_pass, other.best_pass), (self._pass, other._pass)):
            for split, counts in theirs.items():
                mine.setdefault(split, Counter()).update(counts)

    def state_dict(self) -> dict[str, Any]:
        return {"keys": {s: {r: sorted(k, key=repr) for r, k in rs.items()} for s, rs in self.keys.items()},
                "best_pass": {s: dict(c) for s, c in self.best_pass.items()},
                "pass": {s: dict(c) for s, c in self._pass.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and "keys" not in state:  # a checkpoint of before: {reason: count} over the run
            state = {"best_pass": {"train": state}}
        self.keys = {s: {r: set(k) for r, k in rs.items()} for s, rs in state.get("keys", {}).items()}
        self.best_pass = {s: Counter(c) for s, c in state.get("best_pass", {}).items()}
        self._pass = {s: Counter(c) for s, c in state.get("pass", {}).items()}


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
           "check_policy", "with_key", "item_keys", "SkipCounter", "SKIPPED_ITEMS"]
