"""``dependsOn[].readyExpr``: the answers a dependent gets from the expression."""

from __future__ import annotations

import pytest

from fluxd.runtime.dependencies import DEPENDENCY_RETRY, check_ready_expr
from fluxd.runtime.errors import ReconcileError

SELF = {"metadata": {"name": "app", "labels": {"tier": "web"}}}
DEP = {"metadata": {"name": "db", "labels": {"tier": "web"}}, "status": {"phase": "Up"}}


def test_a_true_expression_over_self_and_dep_passes() -> None:
    check_ready_expr(
        "dep.status.phase == 'Up' && dep.metadata.labels.tier == self.metadata.labels.tier",
        obj=SELF,
        dep=DEP,
        where="'ns/db'",
    )


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("dep.status.phase == 'Down'", "dependency 'ns/db' is not ready according to readyExpr"),
        ("dep.status.missing == 'x'", "dependency 'ns/db': readyExpr failed"),
    ],
)
def test_false_or_not_yet_evaluable_is_not_ready_and_retried(expression: str, words: str) -> None:
    with pytest.raises(ReconcileError) as caught:
        check_ready_expr(expression, obj=SELF, dep=DEP, where="'ns/db'")
    assert caught.value.reason == "DependencyNotReady"
    assert words in caught.value.message
    assert caught.value.retry_after == DEPENDENCY_RETRY
    assert not caught.value.stalled


@pytest.mark.parametrize("expression", ["dep.status.((", "other.status.phase == 'Up'"])
def test_an_expression_that_does_not_compile_stalls(expression: str) -> None:
    with pytest.raises(ReconcileError) as caught:
        check_ready_expr(expression, obj=SELF, dep=DEP, where="'ns/db'")
    assert caught.value.reason == "InvalidCELExpression"
    assert caught.value.stalled
    assert "readyExpr of dependency 'ns/db'" in caught.value.message
