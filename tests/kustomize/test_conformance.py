"""fluxd's kustomize builds against ``kubectl kustomize``, case by case, byte for byte.

Every directory under ``cases/`` is one build. Its root is the case directory itself, or
the subdirectory named in a ``ROOT`` file (so an overlay can reach ``../base`` inside the
case). A case with an ``EXPECT_ERROR`` file must fail: fluxd's message must contain the
file's first line, and kustomize must fail too, unless that first line is ``fluxd-only``
(then the substring is on the second line): things kustomize allows and fluxd refuses by
design (remote URLs, exec plugins, helm charts, escaping the root).

kubectl takes 50-100 ms per build, so the oracle's outputs are computed once per session,
in parallel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from fluxd.cli import main
from fluxd.kustomize import KustomizeError, build, read_directory, render
from tests.kustomize.oracle import kubectl_binary, kustomize_oracle_cached

CASES_DIR = Path(__file__).parent / "cases"


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path
    root: str
    #: The substring fluxd's error must contain, or None when the build must succeed.
    expect_error: str | None
    fluxd_only: bool

    @property
    def build_root(self) -> Path:
        return self.directory / self.root

    @classmethod
    def read(cls, directory: Path) -> Case:
        root_file = directory / "ROOT"
        root = root_file.read_text().strip() if root_file.exists() else "."
        expect_error, fluxd_only = None, False
        error_file = directory / "EXPECT_ERROR"
        if error_file.exists():
            lines = [line.strip() for line in error_file.read_text().splitlines()]
            fluxd_only = lines[0] == "fluxd-only"
            expect_error = lines[1] if fluxd_only else lines[0]
        return cls(directory.name, directory, root, expect_error, fluxd_only)


@dataclass(frozen=True)
class OracleResult:
    returncode: int
    stdout: str
    stderr: str


CASES = sorted(
    (Case.read(path) for path in CASES_DIR.iterdir() if path.is_dir()),
    key=lambda case: case.name,
)


@pytest.fixture(scope="session")
def oracle_results() -> Mapping[str, OracleResult]:
    """``kubectl kustomize`` on every case, run once per session on a thread pool."""
    kubectl_binary()  # fetch before fanning out, so the threads do not queue on the lock
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 2) * 2)) as pool:
        results = pool.map(lambda case: kustomize_oracle_cached(case.build_root), CASES)
        return {
            case.name: OracleResult(*result) for case, result in zip(CASES, results, strict=True)
        }


def _fluxd_build(case: Case) -> str:
    return render(build(read_directory(case.directory), case.root))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_matches_kubectl_kustomize(
    case: Case, oracle_results: Mapping[str, OracleResult]
) -> None:
    oracle = oracle_results[case.name]
    if case.expect_error is None:
        assert oracle.returncode == 0, f"kubectl kustomize failed:\n{oracle.stderr}"
        assert _fluxd_build(case) == oracle.stdout
        return
    if not case.fluxd_only:
        assert oracle.returncode != 0, (
            f"kubectl kustomize succeeded where the case expects an error:\n{oracle.stdout}"
        )
    with pytest.raises(KustomizeError) as failure:
        _fluxd_build(case)
    assert case.expect_error in str(failure.value)


BUILDS = [case for case in CASES if case.expect_error is None]


@pytest.mark.parametrize("case", BUILDS, ids=[case.name for case in BUILDS])
def test_cli_prints_what_kubectl_kustomize_prints(
    case: Case, oracle_results: Mapping[str, OracleResult], capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["build", "kustomization", f"--path={case.build_root}", f"--root={case.directory}"]
    assert main(arguments) == 0
    assert capsys.readouterr().out == oracle_results[case.name].stdout


def test_every_case_has_a_kustomization() -> None:
    names = ("kustomization.yaml", "kustomization.yml", "Kustomization")
    missing = [
        case.name
        for case in CASES
        if not any((case.build_root / name).exists() for name in names)
        and case.expect_error is None
    ]
    assert not missing
