"""fluxd's own import-linter contract: a private ``_module`` is its package's business.

A module whose name starts with ``_`` (``fluxd.kustomize._loader``) may be imported only
from inside the package that holds it (``fluxd.kustomize`` and below); everyone else goes
through the package's public names, so a package can reshape its insides freely.
``lint-imports`` (run by ``scripts/test``) loads this contract type from
``pyproject.toml``.
"""

from __future__ import annotations

from typing import Any

from importlinter import Contract, ContractCheck, output


def private_owner(module: str) -> str | None:
    """The package a module is private to, or ``None`` when every part is public."""
    parts = module.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


class PrivateModulesContract(Contract):
    """Broken by each import of a private module from outside the package that owns it."""

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        violations: list[dict[str, Any]] = []
        for importer in sorted(graph.modules):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                owner = private_owner(imported)
                if owner is None or importer == owner or importer.startswith(owner + "."):
                    continue
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    violations.append(
                        {"importer": importer, "imported": imported, "line": detail["line_number"]}
                    )
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(
                f"{violation['importer']}:{violation['line']} imports "
                f"{violation['imported']}, private to "
                f"{private_owner(violation['imported'])}",
                bold=False,
            )
            output.new_line()
