"""How fast fluxd builds a realistic overlay, next to ``kubectl kustomize``.

Generates a 500-object tree into a temporary directory: a base of 125 apps (Deployment,
Service, ConfigMap, Secret each) and an overlay above it with ``namePrefix``, ``commonLabels``, a
strategic-merge patch on every Deployment, an image override and a
``configMapGenerator``. Builds it in-process with ``fluxd.kustomize.build_directory`` and
with the kubectl oracle (a subprocess, as Flux users run it), several times each, prints
the medians and their ratio, and checks that both printed the same YAML.

Run: ``python bench/kustomize_build.py [--apps 125] [--runs 7]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.kustomize.oracle import kubectl_binary  # noqa: E402


def _app(index: int) -> str:
    name = f"app-{index:03d}"
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: main
        image: registry.example.com/team/{name}:1.0.{index}
        ports:
        - containerPort: 8080
          name: http
        envFrom:
        - configMapRef:
            name: {name}-config
        - secretRef:
            name: {name}-secret
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector:
    app: {name}
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-config
data:
  LOG_LEVEL: info
  FEATURE_FLAGS: "a,b,c"
  config.yaml: |
    server:
      port: 8080
      name: {name}
---
apiVersion: v1
kind: Secret
metadata:
  name: {name}-secret
type: Opaque
data:
  TOKEN: c2VjcmV0LXRva2VuLXt7aW5kZXh9fQ==
"""


def write_tree(root: Path, apps: int) -> Path:
    """The overlay in ``root`` (returned) and its base in ``root/base``.

    The base sits below the overlay so ``build_directory(root)`` holds both: a build only
    reads the directory it is given.
    """
    base = root / "base"
    overlay = root
    base.mkdir()
    files = []
    for index in range(apps):
        name = f"app-{index:03d}.yaml"
        (base / name).write_text(_app(index))
        files.append(name)
    (base / "kustomization.yaml").write_text(
        "resources:\n" + "".join(f"- {name}\n" for name in files)
    )
    (overlay / "replicas-patch.yaml").write_text(
        """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: not-used
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: main
        resources:
          limits:
            memory: 256Mi
"""
    )
    (overlay / "kustomization.yaml").write_text(
        """\
resources:
- base
namePrefix: prod-
commonLabels:
  env: prod
  team: platform
patches:
- path: replicas-patch.yaml
  target:
    kind: Deployment
images:
- name: registry.example.com/team/app-000
  newName: registry.example.com/team/app-000-hotfix
  newTag: 1.0.1
configMapGenerator:
- name: overlay-settings
  literals:
  - REGION=eu-west-1
  - TIER=gold
"""
    )
    return overlay


def _median_seconds(fn: Callable[[], str], runs: int) -> tuple[float, str]:
    timings, output = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        output = fn()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--apps", type=int, default=125, help="apps in the base (4 objects each)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per engine")
    args = parser.parse_args()

    try:
        from fluxd.kustomize import build_directory, render
    except ImportError as exc:
        print(f"fluxd.kustomize.build_directory is not available yet: {exc}", file=sys.stderr)
        return 2

    kubectl = str(kubectl_binary())
    with tempfile.TemporaryDirectory(prefix="fluxd-bench-") as scratch:
        overlay = write_tree(Path(scratch), args.apps)

        def fluxd() -> str:
            return render(build_directory(overlay))

        def oracle() -> str:
            result = subprocess.run(
                [kubectl, "kustomize", str(overlay)],
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
            return result.stdout

        fluxd_seconds, fluxd_output = _median_seconds(fluxd, args.runs)
        kubectl_seconds, kubectl_output = _median_seconds(oracle, args.runs)

    objects = kubectl_output.count("\n---\n") + 1
    print(f"objects: {objects} ({args.apps} apps), runs: {args.runs} each")
    print(f"fluxd build_directory+render  median {fluxd_seconds * 1000:8.1f} ms")
    print(f"kubectl kustomize (subprocess) median {kubectl_seconds * 1000:8.1f} ms")
    print(f"ratio fluxd/kubectl: {fluxd_seconds / kubectl_seconds:.2f}")
    if fluxd_output != kubectl_output:
        print("outputs DIFFER", file=sys.stderr)
        return 1
    print("outputs identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
