"""The content store: each distinct content kept once, memory bounded, nothing leaked."""

from __future__ import annotations

import gc
from pathlib import Path

from fluxd.sources.store import ContentStore

KIB = 1024


def test_trees_share_contents_and_release_them_when_dropped() -> None:
    store = ContentStore()
    base = {"apps/a.yaml": b"a" * KIB, "apps/b.yaml": b"b" * KIB}
    first = store.tree(base)
    # The next revision changes one file: only that content is new.
    second = store.tree({**base, "apps/b.yaml": b"B" * KIB})
    assert first is not second
    assert second["apps/a.yaml"] == b"a" * KIB
    stats = store.stats()
    assert (stats.contents, stats.memory_bytes, stats.shared_contents) == (3, 3 * KIB, 1)

    del first
    gc.collect()
    assert store.stats().contents == 2
    assert store.stats().memory_bytes == 2 * KIB
    del second
    gc.collect()
    assert (store.stats().contents, store.stats().trees, store.stats().memory_bytes) == (0, 0, 0)


def test_a_tree_of_the_same_files_is_the_same_object() -> None:
    store = ContentStore()
    files = {"x": b"1", "y": b"2"}
    tree = store.tree(files)
    assert store.tree(dict(reversed(files.items()))) is tree
    assert store.tree(tree) is tree
    assert store.stats().shared_trees == 1


def test_beyond_the_budget_contents_go_to_disk_and_come_back(tmp_path: Path) -> None:
    store = ContentStore(memory_budget=2 * KIB, spill_root=tmp_path)
    contents = {f"f{n}": bytes([n]) * KIB for n in range(5)}
    tree = store.tree(contents)

    stats = store.stats()
    assert stats.memory_bytes <= 2 * KIB
    assert stats.disk_bytes == 3 * KIB
    # Every file still reads back whole, in any order, and memory stays within budget.
    for path in reversed(list(contents)):
        assert tree[path] == contents[path]
        assert store.stats().memory_bytes <= 2 * KIB
    spilled = list(tmp_path.glob("fluxd-contents-*/*"))
    assert len(spilled) >= 3

    del tree
    gc.collect()
    assert list(tmp_path.glob("fluxd-contents-*/*")) == []
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_reads_refresh_recency_so_hot_files_stay_in_memory(tmp_path: Path) -> None:
    store = ContentStore(memory_budget=2 * KIB, spill_root=tmp_path)
    tree = store.tree({"hot": b"h" * KIB, "cold": b"c" * KIB})
    assert tree["hot"]
    store.tree({"new": b"n" * KIB})  # one content must leave memory: the cold one
    on_disk = [p.name for p in tmp_path.glob("fluxd-contents-*/*")]
    assert on_disk == [tree.content_id("cold")]
