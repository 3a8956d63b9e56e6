"""Skipped items are counted once each, by split and reason, however often the loaders read them."""

from __future__ import annotations

import io

import torch
from torch.utils.data import DataLoader, Dataset

from lm4vis.data.skips import SKIPPED_ITEMS, Counted, SkipCounter, Skipped
from lm4vis.train.datamodule import EpochSampler, KeyedCollate, KeyedItems


class _Items(Dataset):
    """10 items: 3 and 7 unreadable, 5 repaired (used and counted)."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int):
        item = {"x": torch.tensor([float(i)])}
        if i in (3, 7):
            return Skipped("unreadable", f"item {i}")
        return Counted(item, "repaired") if i == 5 else item


def _collate(items):  # a task collate that knows nothing of keys
    kept = [dict(it) for it in items if not isinstance(it, Skipped)]
    counts = {}
    for it in items:
        if isinstance(it, (Skipped, Counted)):
            counts[it.reason] = counts.get(it.reason, 0) + 1
    return {"x": torch.cat([k["x"] for k in kept]), "skipped": counts}


def test_two_epochs_through_the_engine_loaders_count_each_item_once():
    counter = SkipCounter()
    sampler = EpochSampler(10, seed=0, shuffle=True)
    loader = DataLoader(KeyedItems(_Items()), batch_size=4, sampler=sampler, collate_fn=KeyedCollate(_collate))
    seen = 0
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for batch in loader:
            counter.add("train", batch["skipped"], batch.get(SKIPPED_ITEMS))
            seen += sum(batch["skipped"].values())
        counter.end_pass("train")
    assert seen == 2 * 3  # the loaders read every bad item twice ...
    assert counter.counts() == {"train": {"repaired": 1, "unreadable": 2}}  # ... each counts once


def test_counts_without_keys_are_taken_per_pass_and_the_state_loads_weights_only():
    counter = SkipCounter()
    for n in (2, 3):  # a collate's own count, no markers: per pass, the largest
        counter.add("val", {"short": n})
        counter.end_pass("val")
    counter.add("train", {"bad": 2}, {"bad": [4, 9]})
    counter.add("train", {"bad": 1}, {"bad": [4]})
    assert counter.counts() == {"train": {"bad": 2}, "val": {"short": 3}}
    buf = io.BytesIO()
    torch.save({"lm4vis_skipped": counter.state_dict()}, buf)
    buf.seek(0)
    again = SkipCounter()
    again.load_state_dict(torch.load(buf, weights_only=True)["lm4vis_skipped"])  # plain lists and ints
    again.add("train", {"bad": 1}, {"bad": [9]})  # a resumed run reads item 9 again
    assert again.counts() == counter.counts()
    old = SkipCounter()
    old.load_state_dict({"unreadable": 4})  # a checkpoint written before: {reason: count}
    assert old.counts() == {"train": {"unreadable": 4}}


def test_ranks_merge_into_one_count():
    from lm4vis.data.skips import SkipCounter

    # Two ranks of a distributed run: each read its own share, and both met item 7 of val.
    a, b = SkipCounter(), SkipCounter()
    a.add("train", {"unreadable": 2}, {"unreadable": [1, 3]})
    b.add("train", {"unreadable": 1}, {"unreadable": [4]})
    a.add("val", {"short": 1}, {"short": [7]})
    b.add("val", {"short": 1}, {"short": [7]})
    a.add("train", {"no-key": 2})  # counts a collate made without keys, per pass
    b.add("train", {"no-key": 1})
    a.end_pass("train"), b.end_pass("train")
    total = SkipCounter()
    for rank in (a, b):
        total.merge(rank.state_dict())
    assert total.counts() == {"train": {"no-key": 3, "unreadable": 3}, "val": {"short": 1}}
