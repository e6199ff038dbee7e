"""What the last scan of each ImageRepository found: the tags ImagePolicies choose from.

Flux's image-reflector-controller keeps scanned tags in a database on disk; fluxd keeps
them in memory, one tuple of strings per ImageRepository, and rescans at start-up (every
object is reconciled then anyway). Tags are stored as Flux stores them, sorted in
descending byte order after the ``exclusionList`` is applied, and the scan's revision is
Flux's: the Adler-32 checksum of their JSON list, so ``lastScanResult.revision`` reads the
same under both.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from fluxd.runtime.keys import ObjectKey

__all__ = ["LATEST_TAGS_COUNT", "Scan", "ScanStore", "exclude_tags"]

#: How many of the newest tags ``status.lastScanResult.latestTags`` shows, as Flux.
LATEST_TAGS_COUNT: Final = 10


def exclude_tags(tags: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """The tags none of ``patterns`` (regular expressions, searched) matches; ValueError
    naming the first pattern that does not compile."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ValueError(f"failed to compile regex {pattern}: {error}") from error
    return [tag for tag in tags if not any(regex.search(tag) for regex in compiled)]


@dataclass(frozen=True)
class Scan:
    """One scan's result: the repository's canonical name and its kept tags."""

    canonical_name: str
    tags: tuple[str, ...]
    revision: str

    @classmethod
    def of(cls, canonical_name: str, tags: Iterable[str]) -> Scan:
        ordered = tuple(sorted(tags, reverse=True))
        listing = json.dumps(list(ordered), separators=(",", ":")).encode()
        return cls(canonical_name, ordered, str(zlib.adler32(listing)))

    @property
    def latest_tags(self) -> list[str]:
        return list(self.tags[:LATEST_TAGS_COUNT])


class ScanStore:
    """The latest scan of every ImageRepository, by its key."""

    def __init__(self) -> None:
        self._scans: dict[ObjectKey, Scan] = {}

    def get(self, key: ObjectKey) -> Scan | None:
        return self._scans.get(key)

    def put(self, key: ObjectKey, scan: Scan) -> bool:
        """Store ``scan``; True when its tags differ from the previous scan's."""
        previous = self._scans.get(key)
        self._scans[key] = scan
        return previous is None or previous.revision != scan.revision

    def forget(self, key: ObjectKey) -> None:
        self._scans.pop(key, None)
