"""Content-addressed storage for artifact files: each distinct content is kept once.

Sources often carry the same files: several GitRepositories on one monorepo, the
revisions of one repository that differ in a few files, a repository and another that
includes it. The store keeps every distinct file content once, under its sha256 (the
*content id*), and an artifact's files are a :class:`Tree`: a read-only mapping of
paths to content ids that reads contents from the store. Trees are interned too, so
two sources with the same files share one tree object.

Memory is bounded: with a ``memory_budget``, the least recently read contents beyond
it are written to a directory of the store's own under ``spill_root`` (once: content
ids never change meaning) and read back when a consumer asks for them; :meth:`close`
removes that directory. When the disk cannot take them (full, read-only), they stay in
memory over budget: storing a tree then raises :class:`SpillFailed` for its source to
report, while reading a stored one back still succeeds. A content leaves
memory and disk when no live tree refers to it: trees release their contents when they
are garbage collected, so the store never holds what no artifact serves.

Reads come from the event loop and from worker threads (builds run in threads), so
state changes take a lock.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from fluxd.runtime.errors import ReconcileError

__all__ = ["ContentStore", "SpillFailed", "StoreStats", "Tree"]

log = structlog.get_logger(__name__)

#: Flux source-controller's reason when its artifact storage cannot be written.
STORAGE_OPERATION_FAILED = "StorageOperationFailed"


class SpillFailed(ReconcileError):
    """Contents beyond the memory budget could not be written to the spill directory.

    Raised to the reconcile that stored a tree (or read one back), whose source then says
    ``Ready=False``/``StorageOperationFailed`` naming the directory; retried, since a disk
    may get space again. Nothing was lost: the contents stayed in memory.
    """

    def __init__(self, directory: Path, error: OSError) -> None:
        # The directory, not ``error.filename``: a write that fails for want of space
        # (ENOSPC) carries no file name.
        super().__init__(
            STORAGE_OPERATION_FAILED,
            "cannot write artifact contents beyond the memory budget to the spill "
            f"directory '{directory}': {error.strerror or error}",
        )


@dataclass(frozen=True)
class StoreStats:
    """What the store holds and how much sharing saved."""

    contents: int  # distinct contents referred to by live trees
    trees: int  # distinct live trees
    memory_bytes: int  # bytes of content held in memory
    disk_bytes: int  # bytes of content only on disk
    shared_contents: int  # times a content was already stored when a tree was made
    shared_trees: int  # times an identical tree was already stored


class Tree(Mapping[str, bytes]):
    """The files of an artifact: path -> content, read from the store on demand."""

    __slots__ = ("__weakref__", "_ids", "_store", "digest", "size", "tarball")

    def __init__(self, store: ContentStore, digest: str, ids: dict[str, str], size: int) -> None:
        self._store = store
        self._ids = ids  # sorted by path
        self.digest = digest
        self.size = size
        #: sha256 hex and length of the tree's tarball (no executables), once computed:
        #: every artifact of this tree has the same one.
        self.tarball: tuple[str, int] | None = None

    def __getitem__(self, path: str) -> bytes:
        return self._store.read(self._ids[path])

    def __contains__(self, path: object) -> bool:
        return path in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def content_id(self, path: str) -> str:
        return self._ids[path]


class ContentStore:
    """File contents by sha256, shared by every tree that contains them."""

    def __init__(self, *, memory_budget: int | None = None, spill_root: Path | None = None) -> None:
        self._budget = memory_budget
        self._spill_root = spill_root
        self._spill_dir: Path | None = None
        self._lock = threading.RLock()
        self._memory: OrderedDict[str, bytes] = OrderedDict()  # least recently read first
        self._memory_bytes = 0
        self._refs: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self._on_disk: set[str] = set()
        self._trees: weakref.WeakValueDictionary[str, Tree] = weakref.WeakValueDictionary()
        self._shared_contents = 0
        self._shared_trees = 0

    def tree(self, files: Mapping[str, bytes]) -> Tree:
        """The interned tree of ``files``; contents already stored are not copied."""
        if isinstance(files, Tree) and files._store is self:
            return files
        ids = {path: hashlib.sha256(files[path]).hexdigest() for path in sorted(files)}
        listing = hashlib.sha256()
        for path, content_id in ids.items():
            listing.update(f"{path}\0{content_id}\0".encode())
        digest = listing.hexdigest()
        with self._lock:
            existing = self._trees.get(digest)
            if existing is not None:
                self._shared_trees += 1
                return existing
            size = 0
            for path, content_id in ids.items():
                size += self._add(content_id, files[path])
            tree = Tree(self, digest, ids, size)
            self._trees[digest] = tree
            # Before trimming, which may fail: the tree's contents are released either way.
            weakref.finalize(tree, self._release, tuple(ids.values()))
            try:
                self._trim()
            except SpillFailed:
                # Not interned: the tree may outlive the failure (a traceback holds it), and
                # storing the same files again must try the disk again, not find it stored.
                del self._trees[digest]
                raise
        return tree

    def read(self, content_id: str) -> bytes:
        with self._lock:
            content = self._memory.get(content_id)
            if content is not None:
                self._memory.move_to_end(content_id)
                return content
            if content_id not in self._on_disk:
                raise KeyError(content_id)
            assert self._spill_dir is not None
            content = (self._spill_dir / content_id).read_bytes()
            self._keep(content_id, content)
            try:
                self._trim()
            except SpillFailed as error:
                # The read succeeded: an artifact already served must stay readable when the
                # disk fills; the source storing the next tree reports the failure itself.
                log.warning("artifact contents kept in memory over budget", error=error.message)
            return content

    def close(self) -> None:
        """Remove what was spilled to disk; the store must not be read afterwards."""
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)

    def stats(self) -> StoreStats:
        with self._lock:
            on_disk_only = self._on_disk - self._memory.keys()
            return StoreStats(
                contents=len(self._refs),
                trees=len(self._trees),
                memory_bytes=self._memory_bytes,
                disk_bytes=sum(self._sizes[c] for c in on_disk_only),
                shared_contents=self._shared_contents,
                shared_trees=self._shared_trees,
            )

    def _add(self, content_id: str, content: bytes) -> int:
        if content_id in self._refs:
            self._refs[content_id] += 1
            self._shared_contents += 1
        else:
            self._refs[content_id] = 1
            self._sizes[content_id] = len(content)
            # A fresh bytes object, so the store never pins a larger buffer it was cut from.
            self._keep(content_id, bytes(content))
        return len(content)

    def _keep(self, content_id: str, content: bytes) -> None:
        self._memory[content_id] = content
        self._memory_bytes += len(content)

    def _trim(self) -> None:
        """Move least recently read contents to disk until memory is within budget.

        A content leaves memory only once it is on disk: when the spill directory cannot
        be written (full, read-only, not a directory) it stays in memory, over budget, and
        :class:`SpillFailed` says where writing failed.
        """
        if self._budget is None:
            return
        while self._memory_bytes > self._budget and len(self._memory) > 1:
            content_id, content = next(iter(self._memory.items()))
            if content_id not in self._on_disk:
                self._write_spilled(content_id, content)
                self._on_disk.add(content_id)
            del self._memory[content_id]
            self._memory_bytes -= len(content)

    def _write_spilled(self, content_id: str, content: bytes) -> None:
        path: Path | None = None
        try:
            path = self._spill() / content_id
            path.write_bytes(content)
        except OSError as error:
            if path is not None:
                _remove_partial(path)
            where = self._spill_dir or self._spill_root or Path(tempfile.gettempdir())
            raise SpillFailed(where, error) from error

    def _spill(self) -> Path:
        if self._spill_dir is None:
            if self._spill_root is not None:
                self._spill_root.mkdir(parents=True, exist_ok=True)
            self._spill_dir = Path(tempfile.mkdtemp(prefix="fluxd-contents-", dir=self._spill_root))
        return self._spill_dir

    def _release(self, content_ids: tuple[str, ...]) -> None:
        with self._lock:
            for content_id in content_ids:
                left = self._refs[content_id] - 1
                if left:
                    self._refs[content_id] = left
                    continue
                del self._refs[content_id], self._sizes[content_id]
                content = self._memory.pop(content_id, None)
                if content is not None:
                    self._memory_bytes -= len(content)
                if content_id in self._on_disk:
                    self._on_disk.discard(content_id)
                    assert self._spill_dir is not None
                    (self._spill_dir / content_id).unlink(missing_ok=True)


def _remove_partial(path: Path) -> None:
    """Remove what a failed write left: a partial file must not keep the disk full. When
    that fails too, the write's failure is still the one to report."""
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        log.warning("cannot remove a partly written spill file", path=str(path), error=str(error))
