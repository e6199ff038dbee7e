"""Fuzz targets for what fluxd reads from sources it does not control.

Each target takes fuzzer bytes, shapes them into the input of one parser, and lets only
that parser's documented refusal through: a kustomize build either builds or raises
:class:`~fluxd.kustomize.KustomizeError` (or the YAML error it wraps), postBuild
substitution either expands or raises :class:`~fluxd.build.postbuild.SubstitutionError`,
and the tarball reader either extracts inside its root or raises
:class:`~fluxd.sources.oci.RegistryError`. Any other exception (a ``KeyError``, a
``RecursionError``, a crash) is a finding: atheris stops and prints the input.

Run one with ``python -m tests.fuzz.targets <kustomize|postbuild|tarball> [libFuzzer
flags]``, e.g. ``-runs=5000 -max_len=4096``; ``tests/unit/test_fuzz.py`` runs each briefly.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tarfile
from collections.abc import Callable

import atheris

with atheris.instrument_imports(include=["fluxd"]):
    from fluxd.build.postbuild import SubstitutionError, expand, substitute
    from fluxd.kustomize import KustomizeError, build
    from fluxd.sources.oci import RegistryError, extract_tarball
    from fluxd.yaml import YamlError

__all__ = ["TARGETS", "main"]


def fuzz_kustomize(data: bytes) -> None:
    """A kustomization and two resources it may list, all from the fuzzer."""
    provider = atheris.FuzzedDataProvider(data)
    kustomization = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 2048))
    first = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 2048))
    files = {
        "kustomization.yaml": b"resources:\n- a.yaml\n- sub\n" + kustomization,
        "a.yaml": first,
        "sub/kustomization.yaml": b"resources:\n- b.yaml\n",
        "sub/b.yaml": provider.ConsumeBytes(provider.remaining_bytes()),
    }
    with contextlib.suppress(KustomizeError, YamlError):
        build(files, ".")


def fuzz_postbuild(data: bytes) -> None:
    """An expression text and variables, then the same substituted into an object."""
    provider = atheris.FuzzedDataProvider(data)
    variables = {
        "name": provider.ConsumeUnicodeNoSurrogates(16),
        "replicas": provider.ConsumeUnicodeNoSurrogates(8),
    }
    text = provider.ConsumeUnicodeNoSurrogates(2048)
    strict = provider.ConsumeBool()
    with contextlib.suppress(SubstitutionError):
        expand(text, variables, strict=strict)
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": text}}
    with contextlib.suppress(SubstitutionError):
        substitute(obj, variables, strict=strict)


def _tarball(provider: atheris.FuzzedDataProvider) -> bytes:
    """A gzipped tar whose entry names, types, links and contents come from the fuzzer."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for _ in range(provider.ConsumeIntInRange(0, 4)):
            info = tarfile.TarInfo(provider.ConsumeUnicodeNoSurrogates(64) or "x")
            info.type = provider.PickValueInList(
                [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]
            )
            info.linkname = provider.ConsumeUnicodeNoSurrogates(64)
            content = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 512))
            info.size = len(content) if info.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(content) if info.size else None)
    return out.getvalue()


def fuzz_tarball(data: bytes) -> None:
    """Raw fuzzer bytes as a layer, then a well-formed tar of fuzzed entries."""
    provider = atheris.FuzzedDataProvider(data)
    raw = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 1024))
    for layer in (raw, _tarball(provider)):
        try:
            extracted = extract_tarball(layer, limit=1 << 20)
        except RegistryError:
            continue
        for path in extracted.files:
            assert path, "an empty path"
            assert not path.startswith("/"), path
            assert ".." not in path.split("/"), path


TARGETS: dict[str, Callable[[bytes], None]] = {
    "kustomize": fuzz_kustomize,
    "postbuild": fuzz_postbuild,
    "tarball": fuzz_tarball,
}


def main(argv: list[str]) -> None:
    """``targets.py NAME [libFuzzer flags]``: fuzz the target NAME."""
    if len(argv) < 2 or argv[1] not in TARGETS:
        raise SystemExit(f"usage: python -m tests.fuzz.targets {{{'|'.join(TARGETS)}}} [flags]")
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
