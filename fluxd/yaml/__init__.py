"""YAML as Go reads and prints it: go-yaml v3 resolution in, kustomize's printing out.

A leaf library (it imports nothing else of fluxd): the kustomize engine, postBuild
substitution and SOPS all read manifests with the same rules, so a value means the same
thing at every step of a build. See :mod:`fluxd.yaml._goyaml` for the rules themselves.
"""

from fluxd.yaml._goyaml import (
    Timestamp,
    YamlError,
    dump_documents,
    load_documents,
    load_values,
    resolve_plain,
)

__all__ = [
    "Timestamp",
    "YamlError",
    "dump_documents",
    "load_documents",
    "load_values",
    "resolve_plain",
]
