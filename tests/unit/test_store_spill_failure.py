"""A spill directory that cannot be written loses nothing and says where it failed."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from fluxd.sources.store import ContentStore, SpillFailed

KIB = 1024


def test_contents_stay_readable_when_the_spill_directory_cannot_be_written(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = ContentStore(memory_budget=KIB, spill_root=blocker / "spill")
    served = store.tree({"app.yaml": b"a" * KIB})

    with pytest.raises(SpillFailed) as failure:
        store.tree({"other.yaml": b"b" * KIB})

    assert failure.value.reason == "StorageOperationFailed"
    assert str(blocker / "spill") in failure.value.message
    # The artifact already served keeps its contents, in memory since disk failed.
    assert served["app.yaml"] == b"a" * KIB
    del failure  # its traceback holds the tree that could not be stored
    gc.collect()
    # That tree is released, not leaked.
    assert (store.stats().trees, store.stats().contents) == (1, 1)
    assert store.stats().disk_bytes == 0
