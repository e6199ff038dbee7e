"""Parsed repository indexes, shared by the HelmCharts that read one repository.

An index can be tens of MiB (a large public repository) and a hundred HelmCharts may
read the same one within a second, after it moved. Each reads the repository's artifact
(the cleaned JSON index) and searches it; parsing it once per revision instead of once
per chart is what this module is for. Only the most recently used few stay parsed: an
index in Python objects is several times its size, and a chart whose source did not move
does not search again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from fluxd.sources.artifact import Artifact
from fluxd.sources.helm.index import RepositoryIndex, parse_index

__all__ = ["ParsedIndexes"]


class ParsedIndexes:
    """The parsed index of a HelmRepository artifact, by its digest; ``keep`` at most."""

    def __init__(self, keep: int = 2) -> None:
        self._keep = keep
        self._parsed: OrderedDict[str, RepositoryIndex] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, artifact: Artifact) -> RepositoryIndex:
        """The index ``artifact`` holds; parsed now unless it was parsed recently."""
        with self._lock:
            found = self._parsed.get(artifact.digest)
            if found is not None:
                self._parsed.move_to_end(artifact.digest)
                return found
        parsed = parse_index(artifact.content())
        with self._lock:
            self._parsed[artifact.digest] = parsed
            while len(self._parsed) > self._keep:
                self._parsed.popitem(last=False)
        return parsed
