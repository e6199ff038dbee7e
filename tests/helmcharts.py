"""Test Helm charts, packaged in memory as ``helm package`` lays them out.

:func:`package` turns a dict of files into ``.tgz`` bytes (``<name>/Chart.yaml``,
``<name>/values.yaml``, ``<name>/templates/...``); the constants are charts tests reuse.
"""

from __future__ import annotations

import hashlib
import io
import tarfile

__all__ = [
    "APP_CHART",
    "BROKEN_CHART",
    "CRD_CHART",
    "HOOK_JOB_CHART",
    "TEST_HOOK_CHART",
    "digest",
    "package",
]


def package(name: str, files: dict[str, str], version: str = "0.1.0") -> bytes:
    """The chart ``name`` with ``files`` (paths inside the chart) as a ``.tgz``; a
    ``Chart.yaml`` is written when ``files`` has none."""
    contents = dict(files)
    contents.setdefault(
        "Chart.yaml", f"apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: '1.0'\n"
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, text in sorted(contents.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def digest(archive: bytes) -> str:
    return f"sha256:{hashlib.sha256(archive).hexdigest()}"


APP_FILES = {
    "values.yaml": "replicaCount: 1\nmessage: hello\n",
    "templates/configmap.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n"
        "data:\n  message: {{ .Values.message | quote }}\n"
        "  replicas: {{ .Values.replicaCount | quote }}\n"
    ),
    "templates/service.yaml": (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n"
        "spec:\n  ports: [{port: 80}]\n  selector: {app: {{ .Release.Name }}}\n"
    ),
    "templates/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"
        "spec:\n  replicas: {{ .Values.replicaCount }}\n"
        "  selector: {matchLabels: {app: {{ .Release.Name }}}}\n"
        "  template:\n    metadata: {labels: {app: {{ .Release.Name }}}}\n"
        "    spec: {containers: [{name: app, image: 'registry.invalid/app:1'}]}\n"
    ),
}
APP_CHART = package("app", APP_FILES)

BROKEN_CHART = package(
    "broken",
    {
        "templates/configmap.yaml": (
            "apiVersion: v1\nkind: ConfigMap\n{{ .Values.missing.deeper }}\n"
        ),
        "templates/ok.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n",
    },
)

TEST_HOOK_CHART = package(
    "tested",
    {
        "templates/configmap.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-config}\n"
        ),
        "templates/test.yaml": (
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n"
            "  annotations: {helm.sh/hook: test}\n"
            "spec:\n  restartPolicy: Never\n"
            "  containers: [{name: t, image: 'registry.invalid/t:1'}]\n"
        ),
    },
)

CRD_CHART = package(
    "withcrd",
    {
        "crds/widgets.yaml": (
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
            "metadata: {name: widgets.charts.example.com}\n"
            "spec:\n  group: charts.example.com\n"
            "  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}\n"
            "  scope: Namespaced\n"
            "  versions:\n  - name: v1\n    served: true\n    storage: true\n"
            "    schema:\n      openAPIV3Schema:\n"
            "        {type: object, x-kubernetes-preserve-unknown-fields: true}\n"
        ),
        "templates/configmap.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-config}\n"
        ),
    },
)

# A pre-install hook Job: the install waits for it to complete, which takes as long as
# the cluster takes to run it (forever on a control plane without controllers).
HOOK_JOB_CHART = package(
    "hookjob",
    {
        "templates/job.yaml": (
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-setup\n"
            "  annotations: {helm.sh/hook: pre-install}\n"
            "spec:\n  template:\n    spec:\n      restartPolicy: Never\n"
            "      containers: [{name: setup, image: 'registry.invalid/setup:1'}]\n"
        ),
    },
)
