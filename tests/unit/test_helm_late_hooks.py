"""Which charts fluxd may install without Helm's waiter: those with no hook that Helm
runs after its wait (a ``post-install`` or ``post-upgrade`` hook), found in any file of
the chart or its subcharts; in doubt (templated events, an unreadable archive) Helm waits."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from fluxd.helm.charts import _archive_has_late_hooks, mentions_late_hooks
from tests.chartservers import package_chart

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"


def hooked(events: str) -> str:
    return (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: t\n  annotations:\n"
        f"    helm.sh/hook: {events}\n    helm.sh/hook-weight: '1'\n"
    )


@pytest.mark.parametrize(
    ("text", "late"),
    [
        (hooked("test"), False),
        (hooked("pre-install,pre-upgrade"), False),
        (hooked('"test-success"'), False),
        (hooked("pre-install, post-install"), True),
        (hooked('"post-upgrade"'), True),
        (hooked("{{ .Values.hookEvents }}"), True),
        ('{"metadata": {"annotations": {"helm.sh/hook": "post-install"}}}', True),
        ("annotations:\n  helm.sh/hook:\n    post-install\n", True),
        ("annotations:\n  helm.sh/hook-delete-policy: hook-succeeded\n", False),
        (CONFIGMAP, False),
    ],
)
def test_hook_annotations_are_read_for_events_after_the_wait(text: str, late: bool) -> None:
    assert mentions_late_hooks(text.encode()) is late


def test_a_subchart_archive_with_a_post_install_hook_counts() -> None:
    sub = package_chart("sub", "1.0.0", {"templates/job.yaml": hooked("post-install")})
    plain = package_chart("app", "1.0.0", {"templates/cm.yaml": CONFIGMAP})
    assert not _archive_has_late_hooks(plain)
    with_tests = package_chart("app", "1.0.0", {"templates/tests/t.yaml": hooked("test")})
    assert not _archive_has_late_hooks(with_tests)

    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb") as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for name, data in (("app/Chart.yaml", b"name: app\n"), ("app/charts/sub-1.0.0.tgz", sub)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert _archive_has_late_hooks(out.getvalue())


def test_an_archive_that_cannot_be_read_counts_as_having_late_hooks() -> None:
    assert _archive_has_late_hooks(b"not a chart")
