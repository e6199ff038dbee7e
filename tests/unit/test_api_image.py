"""ImageUpdateAutomation specs as Flux's image-automation API declares them.

The selector and reference rules are Flux's; ``tests/unit/test_crd_parity.py`` holds the
schema to them. What a user writes and Flux takes must parse here too.
"""

from __future__ import annotations

from typing import Any

from fluxd.api import IMAGE_UPDATE_AUTOMATION


def _automation(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "interval": "30m",
        "sourceRef": {"kind": "GitRepository", "name": "repo"},
        "git": {"commit": {"author": {"email": "bot@example.com"}}},
    }
    base.update(spec)
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImageUpdateAutomation",
        "spec": base,
    }


def test_any_refspec_flux_accepts_is_accepted() -> None:
    # Flux leaves refspecs to Git; a forced update of another ref is a valid one.
    refspec = "+refs/heads/main:refs/heads/image-updates"
    obj = _automation(
        git={
            "commit": {"author": {"email": "bot@example.com"}},
            "push": {"branch": "auto", "refspec": refspec},
        }
    )
    spec = IMAGE_UPDATE_AUTOMATION.parse_spec(obj)
    assert spec.git is not None
    assert spec.git.push is not None
    assert spec.git.push.refspec == refspec
