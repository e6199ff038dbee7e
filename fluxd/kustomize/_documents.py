"""The YAML the engine reads and prints, with its failures as :class:`KustomizeError`.

:mod:`fluxd.yaml` knows YAML, not kustomize: its errors say what did not parse and
where. Every kustomize stage reads through these wrappers, so a caller of the engine
handles one error type whatever stage failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fluxd import yaml
from fluxd.kustomize._model import KustomizeError

__all__ = ["dump_documents", "load_documents", "load_values"]


def load_documents(
    raw: bytes, *, source: str, kyaml_round_trip: bool = True
) -> list[dict[str, Any]]:
    """The objects in ``raw``; see :func:`fluxd.yaml.load_documents`."""
    try:
        return yaml.load_documents(raw, source=source, kyaml_round_trip=kyaml_round_trip)
    except yaml.YamlError as error:
        raise KustomizeError(str(error)) from error


def load_values(raw: bytes, *, source: str, kyaml_round_trip: bool = False) -> list[Any]:
    """Each document's value; see :func:`fluxd.yaml.load_values`."""
    try:
        return yaml.load_values(raw, source=source, kyaml_round_trip=kyaml_round_trip)
    except yaml.YamlError as error:
        raise KustomizeError(str(error)) from error


def dump_documents(objects: Sequence[Mapping[str, Any]]) -> str:
    """The YAML stream kubectl prints; see :func:`fluxd.yaml.dump_documents`."""
    try:
        return yaml.dump_documents(objects)
    except yaml.YamlError as error:
        raise KustomizeError(str(error)) from error
