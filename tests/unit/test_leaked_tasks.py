"""The suite's own guard: a test that leaves an asyncio task running fails, naming it.

Each case runs a small test file in a pytest of its own (``pytester``), with the root
conftest as its only plugin, and reads the outcome.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

LEAKY = """
import asyncio

LEAKED = []

async def test_leaks():
    LEAKED.append(asyncio.create_task(asyncio.Event().wait(), name="forgotten-watcher"))

async def test_cleans_up():
    task = asyncio.create_task(asyncio.Event().wait(), name="awaited-watcher")
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass

def test_the_leaked_task_was_cancelled():
    assert LEAKED[0].cancelled()

def test_sync():
    pass
"""


def run(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makepyfile(test_subject=source)
    return pytester.runpytest(
        "-p",
        "tests.conftest",
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_mode=auto",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )


def test_a_leaked_task_fails_the_test_naming_the_task(pytester: pytest.Pytester) -> None:
    result = run(pytester, LEAKY)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            "*left 1 asyncio task(s) running: 'forgotten-watcher' (Event.wait at *locks.py:*)*",
        ]
    )
    assert "awaited-watcher" not in result.stdout.str()


def test_a_task_that_ignores_cancellation_is_reported_as_such(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tests.conftest.LEAK_CANCEL_GRACE", 0.05)
    result = run(
        pytester,
        """
import asyncio

async def stubborn():
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling() > 1:
                raise

async def test_leaks_a_stubborn_task():
    asyncio.create_task(stubborn(), name="stubborn")
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*'stubborn' (stubborn at *)*still running after cancel: 1*"])
