"""A Kustomization's build fields as a kustomize overlay: the one place that maps them.

Flux's kustomize-controller does not hand its spec to kustomize: it rewrites the
kustomization file at ``spec.path`` (or generates one) with the spec's fields folded in,
and builds that. The kustomize engine takes the same edits as an
:class:`~fluxd.kustomize.Overlay`, in kustomize's names, so that it knows nothing of
Flux's:

- ``targetNamespace`` is kustomize's ``namespace``; ``namePrefix`` and ``nameSuffix``
  keep their names;
- ``patches`` (an inline patch and a target) and ``images`` (name, newName, newTag,
  digest) have kustomize's shape already;
- ``components`` are relative to ``spec.path`` as kustomize's are to the kustomization;
  ``ignoreMissingComponents`` leaves out those the artifact does not hold, as Flux
  leaves them out of the file it writes;
- ``buildMetadata`` (``originAnnotations``, ``transformerAnnotations``), when set,
  replaces the file's own, as Flux writes it into the file it builds;
- the overlay is named ``spec``, so a broken patch is reported as ``spec.patches[0]``,
  the field the user wrote, not as an entry of a file that does not hold it.

``commonMetadata`` is not a build field: :mod:`fluxd.build.kustomization` sets it on
the built objects, last, as Flux does at apply time.
"""

from __future__ import annotations

from fluxd.api import KustomizationSpec, to_dict
from fluxd.kustomize import Overlay

__all__ = ["spec_overlay"]


def spec_overlay(spec: KustomizationSpec) -> Overlay:
    """The edits Flux makes to the top kustomization for ``spec``."""
    return Overlay(
        namespace=spec.target_namespace or "",
        name_prefix=spec.name_prefix or "",
        name_suffix=spec.name_suffix or "",
        patches=[to_dict(patch) for patch in spec.patches],
        images=[to_dict(image) for image in spec.images],
        components=spec.components,
        build_metadata=spec.build_metadata,
        skip_missing_components=spec.ignore_missing_components,
        name="spec",
    )
