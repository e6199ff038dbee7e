"""Server-side apply of built manifests: what a Kustomization does to the cluster.

- :mod:`~fluxd.apply.mapper`: ``apiVersion``/``kind`` to REST collection, by discovery;
- :mod:`~fluxd.apply.inventory`: object references, Flux's ``status.inventory`` ids,
  the apply order, and what a new build no longer has (to prune);
- :mod:`~fluxd.apply.manager`: staged apply with dry-run drift detection, recreation of
  objects with immutable changes, and deletion that respects ``prune: disabled`` and
  ownership;
- :mod:`~fluxd.apply.changeset`: what was done, object by object, and the event text.
"""

from fluxd.apply.changeset import Action, Change, ChangeSet
from fluxd.apply.errors import ApplyError
from fluxd.apply.inventory import ObjectRef, apply_order, entries, parse, stale
from fluxd.apply.manager import ApplyManager
from fluxd.apply.mapper import NoKindMatchError, RESTMapper

__all__ = [
    "Action",
    "ApplyError",
    "ApplyManager",
    "Change",
    "ChangeSet",
    "NoKindMatchError",
    "ObjectRef",
    "RESTMapper",
    "apply_order",
    "entries",
    "parse",
    "stale",
]
