"""``fluxd build kustomization --path DIR`` without a NAME reaches ``../`` bases as
``kubectl kustomize DIR`` does: below the git work tree holding DIR, else anywhere; an
explicit ``--root`` still narrows what the build may read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fluxd.cli import main
from tests.kustomize.oracle import kustomize_oracle

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n"


def overlay_over_base(tree: Path) -> Path:
    """``tree/apps/overlay`` naming ``../../bases/app``; the overlay directory."""
    base = tree / "bases" / "app"
    base.mkdir(parents=True)
    (base / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (base / "cm.yaml").write_text(CONFIGMAP)
    overlay = tree / "apps" / "overlay"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        "resources: [../../bases/app]\nnamespace: prod\nnamePrefix: prod-\n"
    )
    return overlay


def cli_build(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(["build", "kustomization", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bases_in_the_same_git_work_tree_build_as_with_kubectl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    overlay = overlay_over_base(tmp_path)
    code, out, err = cli_build(capsys, f"--path={overlay}")
    assert (code, err) == (0, "")
    assert "name: prod-settings\n  namespace: prod\n" in out
    assert out == kustomize_oracle(overlay)[1]


def test_outside_a_git_work_tree_bases_anywhere_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overlay = overlay_over_base(tmp_path)
    code, out, err = cli_build(capsys, f"--path={overlay}")
    assert (code, err) == (0, "")
    assert out == kustomize_oracle(overlay)[1]


def test_an_explicit_root_still_narrows_the_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overlay = overlay_over_base(tmp_path)
    code, out, err = cli_build(capsys, f"--path={overlay}", f"--root={overlay.parent}")
    assert code == 1
    assert out == ""
    assert "'../../bases/app' points outside the source artifact root" in err
    assert "kustomization.yaml" in err
