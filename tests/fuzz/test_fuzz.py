"""Each fuzz target runs briefly in the test command: a crash on any input fails it.

A fixed seed keeps the run the same on every machine, so CI does not fail on an input
found by chance; run a target longer by hand (``python -m tests.fuzz.targets NAME
-runs=1000000``) to look further.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parents[2]
RUNS = 2000


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_survives_its_brief_run(target: str, tmp_path: Path) -> None:
    flags = [f"-runs={RUNS}", "-seed=1", "-max_len=4096", f"-artifact_prefix={tmp_path}/"]
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.targets", target, *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"Done {RUNS} runs" in done.stderr
    assert not list(tmp_path.iterdir()), "a crashing input was written"
