"""A HelmRelease's post-rendering: the chart's rendered manifests edited before Helm applies them.

Flux's helm-controller runs three post-renderers, in this order, on what Helm renders:

1. each ``spec.postRenderers[].kustomize`` entry: a kustomize build of the stream with
   its ``patches`` and ``images`` (the v2beta1 ``patchesStrategicMerge`` and
   ``patchesJson6902`` are the same patches without or with a target), run by fluxd's own
   kustomize engine, so patches behave as they do for a Kustomization;
2. ``spec.commonMetadata``: labels and annotations set on every object's metadata;
3. the origin labels ``helm.toolkit.fluxcd.io/name`` and ``.../namespace``, last, so
   they win over a common label of the same key.

The Helm SDK post-renders only through a plugin executable, so this module is also that
executable: Helm runs ``python -m fluxd.build.postrender PLAN`` with the manifests on
stdin and reads the result from stdout. Helm reports only the exit status of a failing
plugin, so the reason also goes to the file the plan names, for the reconciler to read.
The process imports only PyYAML's C parser unless a kustomize post-renderer asks for the
engine, since it starts once per install or upgrade.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["PostRenderError", "PostRendering", "post_render"]

_INPUT = "helm-output.yaml"


@dataclass(frozen=True)
class PostRendering:
    """What to do to a rendered chart: kustomize steps, then metadata, then origin labels."""

    #: Each a kustomization's ``patches`` and ``images``, in kustomize's shape.
    kustomize: Sequence[Mapping[str, Any]] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    origin_labels: Mapping[str, str] = field(default_factory=dict)
    #: Where the plugin writes why it failed: Helm keeps only its exit status.
    error_path: str = ""

    def encode(self) -> str:
        return json.dumps(
            {
                "kustomize": list(self.kustomize),
                "labels": dict(self.labels),
                "annotations": dict(self.annotations),
                "originLabels": dict(self.origin_labels),
                "errorPath": self.error_path,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str) -> PostRendering:
        plan = json.loads(text)
        return cls(
            kustomize=plan["kustomize"],
            labels=plan["labels"],
            annotations=plan["annotations"],
            origin_labels=plan["originLabels"],
            error_path=plan["errorPath"],
        )


class PostRenderError(Exception):
    """A post-renderer refused the manifests (a patch that does not apply, bad YAML)."""


def post_render(manifests: str, plan: PostRendering) -> str:
    """The manifests after every step of ``plan``, as one YAML stream."""
    for index, step in enumerate(plan.kustomize):
        manifests = _kustomize(manifests, step, f"spec.postRenderers[{index}].kustomize")
    try:
        documents = [doc for doc in yaml.load_all(manifests, Loader=yaml.CSafeLoader) if doc]
    except yaml.YAMLError as error:
        raise PostRenderError(f"post-renderer input is not YAML: {error}") from error
    for document in documents:
        if not isinstance(document, dict):
            raise PostRenderError(f"post-renderer input holds a non-object: {document!r:.80}")
        metadata = document.setdefault("metadata", {})
        for key, extra in (
            ("labels", {**plan.labels, **plan.origin_labels}),
            ("annotations", plan.annotations),
        ):
            if extra:
                metadata[key] = {**(metadata.get(key) or {}), **extra}
    return str(
        yaml.dump_all(documents, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False)
    )


def _kustomize(manifests: str, step: Mapping[str, Any], where: str) -> str:
    from fluxd import kustomize

    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [_INPUT],
        "patches": list(step.get("patches") or ()),
        "images": list(step.get("images") or ()),
    }
    files = {
        _INPUT: manifests.encode(),
        "kustomization.yaml": json.dumps(kustomization).encode(),
    }
    try:
        return kustomize.render(kustomize.build(files, "."))
    except kustomize.KustomizeError as error:
        raise PostRenderError(f"{where}: {error}") from error


def main(argv: Sequence[str]) -> int:
    """Helm's plugin protocol: the plan as the one argument, manifests on stdin."""
    if len(argv) != 1:
        print("usage: python -m fluxd.build.postrender PLAN-JSON", file=sys.stderr)
        return 2
    plan = PostRendering.decode(argv[0])
    try:
        sys.stdout.write(post_render(sys.stdin.read(), plan))
    except PostRenderError as error:
        print(error, file=sys.stderr)
        if plan.error_path:
            Path(plan.error_path).write_text(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
