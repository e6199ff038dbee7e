"""The spill directory failing: storing the same files again tries the disk again, and
a content already stored stays readable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fluxd.sources.store import ContentStore, SpillFailed

KIB = 1024


def test_the_same_files_stored_again_retry_the_disk_until_it_can_be_written(
    tmp_path: Path,
) -> None:
    # Root may write anywhere, so the spill directory is unusable as the child of a file.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = ContentStore(memory_budget=KIB, spill_root=blocker / "spill")
    served = store.tree({"app.yaml": b"a" * KIB})
    files = {"other.yaml": b"b" * KIB}
    with pytest.raises(SpillFailed) as first:
        store.tree(files)

    # The failure's traceback still holds the tree it could not store: that tree must not
    # be handed out as stored.
    with pytest.raises(SpillFailed):
        store.tree(files)
    assert str(blocker / "spill") in first.value.message

    blocker.unlink()
    blocker.mkdir()
    stored = store.tree(files)

    assert stored["other.yaml"] == b"b" * KIB
    assert served["app.yaml"] == b"a" * KIB
    assert store.stats().disk_bytes == KIB
    assert store.stats().memory_bytes <= KIB


def test_a_content_read_back_is_returned_when_making_room_for_it_fails(tmp_path: Path) -> None:
    store = ContentStore(memory_budget=KIB, spill_root=tmp_path)
    served = store.tree({"app.yaml": b"a" * KIB})
    newer = store.tree({"other.yaml": b"b" * KIB})  # moves app.yaml to disk
    assert store.stats().disk_bytes == KIB
    # Reading app.yaml back must move other.yaml out; a directory where its file would go
    # makes that write fail as a full disk would.
    (spill_dir,) = tmp_path.iterdir()
    (spill_dir / hashlib.sha256(b"b" * KIB).hexdigest()).mkdir()

    assert served["app.yaml"] == b"a" * KIB
    assert newer["other.yaml"] == b"b" * KIB
