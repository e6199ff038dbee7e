"""``configMapGenerator`` and ``secretGenerator``: objects made from literals and files.

Each generator entry becomes one ConfigMap or Secret, built the way kustomize v5.7 builds
it, then *absorbed* into the resources accumulated so far:

- key/value pairs come from ``envs`` (and the legacy ``env``) first, then ``literals``,
  then ``files``; a key seen twice is an error. Literal values lose one pair of matching
  surrounding quotes; env files follow :mod:`fluxd.kustomize._envfile`; a file source is
  ``path`` (key = its base name) or ``key=path``;
- a ConfigMap value that is not valid UTF-8 goes to ``binaryData`` (base64); every Secret
  value is base64-encoded into ``data``; a Secret's ``type`` defaults to ``Opaque``.
  Base64 longer than 70 characters is broken into 70-character lines, each ending in a
  newline, as kustomize does (and hashes);
- ``options`` (labels, annotations, ``disableNameSuffixHash``, ``immutable``) are merged
  over the kustomization's ``generatorOptions``: the entry's labels and annotations win
  key by key, but a ``true`` at the kustomization level cannot be turned off per entry;
- ``behavior: create`` (the default; kustomize reads any unknown value as create) adds the
  object and fails if one with the same kind, name and namespace exists; ``merge`` and
  ``replace`` need exactly one such object, which they take the place of. Both keep the
  existing object's name, namespace and rename history and merge its labels and
  annotations under the new ones; ``merge`` also merges ``data`` and ``binaryData``.
  The result gets a hash suffix only if both the existing and the new object want one.

The content hash itself is added at the very end of the build (see
:mod:`fluxd.kustomize._nameref`), over the final content.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fluxd.kustomize._envfile import parse_env_file
from fluxd.kustomize._model import KustomizeError, Resource
from fluxd.yaml import resolve_plain

__all__ = ["run_generators"]

_GENERATORS = (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator"))
_CREATE, _MERGE, _REPLACE = "create", "merge", "replace"
_BASE64_LINE = 70


@dataclass(frozen=True)
class _Options:
    """Kustomize's ``GeneratorOptions``."""

    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    disable_hash: bool = False
    immutable: bool = False

    def under(self, outer: _Options) -> _Options:
        """These options with ``outer`` (kustomization-wide) ones merged in beneath."""
        return _Options(
            labels={**outer.labels, **self.labels},
            annotations={**outer.annotations, **self.annotations},
            disable_hash=self.disable_hash or outer.disable_hash,
            immutable=self.immutable or outer.immutable,
        )


@dataclass(frozen=True)
class _Context:
    read_file: Callable[[str], bytes]
    file: str


def run_generators(
    resources: list[Resource],
    kustomization: Mapping[str, Any],
    *,
    read_file: Callable[[str], bytes],
    kustomization_file: str,
    inherited_options: Mapping[str, Any] | None = None,
) -> list[Resource]:
    """``resources`` with this kustomization's generated ConfigMaps and Secrets absorbed.

    ``read_file`` loads a path relative to the kustomization directory (and raises
    :class:`KustomizeError` itself for a missing file or one outside the build root).
    ``inherited_options`` are generator options that apply beneath the kustomization's
    own ``generatorOptions``. The input list is not modified; merged and replaced objects
    take the place of the ones they absorb, created ones are appended.
    """
    ctx = _Context(read_file=read_file, file=kustomization_file)
    options = _parse_options(
        kustomization.get("generatorOptions"), ctx=ctx, where="generatorOptions"
    )
    if inherited_options is not None:
        options = options.under(
            _parse_options(inherited_options, ctx=ctx, where="generatorOptions")
        )
    result = list(resources)
    for kind, key in _GENERATORS:
        for index, args in enumerate(_list(kustomization.get(key), ctx=ctx, where=key)):
            where = f"{key}[{index}]"
            if not isinstance(args, Mapping):
                raise KustomizeError(
                    "each generator entry must be a mapping with at least a `name`",
                    file=ctx.file,
                    field=where,
                )
            generated = _generate(kind, args, options, ctx=ctx, where=where)
            _absorb(result, generated, ctx=ctx, where=where)
    return result


def _generate(
    kind: str, args: Mapping[str, Any], outer: _Options, *, ctx: _Context, where: str
) -> Resource:
    name = args.get("name")
    if not isinstance(name, str) or not name:
        raise KustomizeError(
            f"a generated {kind} needs a `name`", file=ctx.file, field=f"{where}.name"
        )
    namespace = _string(args.get("namespace"), ctx=ctx, where=f"{where}.namespace")
    behavior = _string(args.get("behavior"), ctx=ctx, where=f"{where}.behavior")
    options = _parse_options(args.get("options"), ctx=ctx, where=f"{where}.options").under(outer)
    pairs = _load_pairs(args, ctx=ctx, where=where)

    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if options.labels:
        metadata["labels"] = dict(sorted(options.labels.items()))
    if options.annotations:
        metadata["annotations"] = dict(sorted(options.annotations.items()))
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
    if kind == "Secret":
        secret_type = _string(args.get("type"), ctx=ctx, where=f"{where}.type")
        obj["type"] = secret_type or "Opaque"
        obj["data"] = {key: _base64(value) for key, value in sorted(pairs.items())}
    else:
        data: dict[str, str] = {}
        binary: dict[str, str] = {}
        for key, value in sorted(pairs.items()):
            text = _as_text(value)
            if text is None:
                binary[key] = _base64(value)
            else:
                data[key] = text
        if data:
            obj["data"] = data
        if binary:
            obj["binaryData"] = binary
    if options.immutable:
        obj["immutable"] = True
    _check_keys(obj, ctx=ctx, where=where)
    return Resource(
        obj=obj,
        origin=ctx.file,
        needs_hash_suffix=not options.disable_hash,
        behavior=behavior if behavior in (_MERGE, _REPLACE) else _CREATE,
    )


def _load_pairs(args: Mapping[str, Any], *, ctx: _Context, where: str) -> dict[str, str | bytes]:
    """All key/value pairs of one entry, in kustomize's order: envs, literals, files."""
    loaded: list[tuple[str, str | bytes]] = []
    env_paths = list(_strings(args.get("envs"), ctx=ctx, where=f"{where}.envs"))
    legacy_env = _string(args.get("env"), ctx=ctx, where=f"{where}.env")
    if legacy_env:
        env_paths.append(legacy_env)
    for path in env_paths:
        content = ctx.read_file(path)
        loaded.extend(parse_env_file(content, path=path, file=ctx.file, field=f"{where}.envs"))
    for index, literal in enumerate(
        _strings(args.get("literals"), ctx=ctx, where=f"{where}.literals")
    ):
        loaded.append(_parse_literal(literal, ctx=ctx, where=f"{where}.literals[{index}]"))
    for index, source in enumerate(_strings(args.get("files"), ctx=ctx, where=f"{where}.files")):
        key, path = _parse_file_source(source, ctx=ctx, where=f"{where}.files[{index}]")
        loaded.append((key, ctx.read_file(path)))

    pairs: dict[str, str | bytes] = {}
    for key, value in loaded:
        if key in pairs:
            raise KustomizeError(
                f"generator {args.get('name')} repeats the key `{key}`; "
                "each key may come from only one literal, file or env line",
                file=ctx.file,
                field=where,
            )
        pairs[key] = value
    return pairs


def _parse_literal(source: str, *, ctx: _Context, where: str) -> tuple[str, str]:
    key, sep, value = source.partition("=")
    if not sep or not key:
        raise KustomizeError(
            f"invalid literal source {source!r}, expected key=value", file=ctx.file, field=where
        )
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return key, value


def _parse_file_source(source: str, *, ctx: _Context, where: str) -> tuple[str, str]:
    """``path`` (the key is its base name) or ``key=path``."""
    separators = source.count("=")
    if separators == 0:
        return _go_base(source), source
    if separators > 1:
        problem = f"file source {source!r}: the key name or file path contains '='"
    elif source.startswith("="):
        problem = f"missing key name for file path {source[1:]!r} in file source {source!r}"
    elif source.endswith("="):
        problem = f"missing file path for key name {source[:-1]!r} in file source {source!r}"
    else:
        key, _, path = source.partition("=")
        return key, path
    raise KustomizeError(problem, file=ctx.file, field=where)


def _go_base(path: str) -> str:
    """Go's ``path.Base``: the last element, trailing slashes ignored."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def _absorb(resources: list[Resource], new: Resource, *, ctx: _Context, where: str) -> None:
    """Add ``new`` to ``resources``, or merge/replace the one object it names."""
    matches = [index for index, old in enumerate(resources) if _same_object(old, new)]
    described = f"{new.obj['kind']} {_describe(new)}"
    if len(matches) > 1:
        names = ", ".join(str(resources[index].id) for index in matches)
        raise KustomizeError(
            f"{described} matches several objects ({names}); cannot {new.behavior} it",
            file=ctx.file,
            field=where,
        )
    if not matches:
        if new.behavior != _CREATE:
            raise KustomizeError(
                f"{described} does not exist; cannot {new.behavior} it: "
                "generate or list it in a base first, or drop `behavior`",
                file=ctx.file,
                field=where,
            )
        resources.append(new)
        return
    index = matches[0]
    if new.behavior == _CREATE:
        raise KustomizeError(
            f"{described} already exists; set `behavior: merge` or `behavior: replace`",
            file=ctx.file,
            field=where,
        )
    resources[index] = _combine(resources[index], new)
    _check_keys(resources[index].obj, ctx=ctx, where=where)


def _same_object(old: Resource, new: Resource) -> bool:
    """Whether ``old`` is, or once was, the object ``new`` names (kind, name, namespace).

    Kustomize remembers each (name, namespace) an object had. fluxd keeps the original
    name and namespace and the names in between: those may pair with the original or
    the current namespace, the current name only with the current namespace.
    """
    if (old.obj.get("apiVersion"), old.obj.get("kind")) != ("v1", new.obj["kind"]):
        return False
    namespace = _effective_namespace(new.id.namespace)
    current = _effective_namespace(old.id.namespace)
    original = _effective_namespace(old.original_namespace)
    if new.name == old.name and namespace == current:
        return True
    if new.name == old.original_name and namespace == original:
        return True
    return new.name in old.previous_names and namespace in (original, current)


def _combine(old: Resource, new: Resource) -> Resource:
    obj = new.obj
    metadata: dict[str, Any] = obj["metadata"]
    old_metadata: Mapping[str, Any] = old.obj.get("metadata") or {}
    for key in ("labels", "annotations"):
        merged = {**(old_metadata.get(key) or {}), **(metadata.get(key) or {})}
        if merged:
            metadata[key] = merged
        else:
            metadata.pop(key, None)
    metadata["name"] = old.name
    if old.id.namespace:
        metadata["namespace"] = old.id.namespace
    else:
        metadata.pop("namespace", None)
    if new.behavior == _MERGE:
        for key in ("data", "binaryData"):
            merged = {**(old.obj.get(key) or {}), **(obj.get(key) or {})}
            if merged:
                obj[key] = merged
            else:
                obj.pop(key, None)
    combined = Resource(
        obj=obj,
        origin=new.origin,
        needs_hash_suffix=old.needs_hash_suffix and new.needs_hash_suffix,
        behavior=new.behavior,
        previous_names=list(old.previous_names),
        namespace_transformed=old.namespace_transformed,
    )
    # Set after construction: Resource reads an empty original namespace as "take the
    # current one", but "" is exactly what an object moved into a namespace started with.
    combined.original_name = old.original_name
    combined.original_namespace = old.original_namespace
    return combined


def _check_keys(obj: Mapping[str, Any], *, ctx: _Context, where: str) -> None:
    """Refuse the keys kustomize cannot print (it writes generated keys unquoted).

    A key such as ``1``, ``true``, ``null`` or ``2024-01-01`` reads back as a number,
    boolean, null or timestamp, and kustomize fails on the resulting non-string key.
    """
    for field_name in ("data", "binaryData"):
        for key in obj.get(field_name) or {}:
            # A Timestamp is a str subclass: only a plain str is a string key.
            if not isinstance(key, str) or key == "<<" or type(resolve_plain(key)) is not str:
                raise KustomizeError(
                    f"key {key!r} of {obj['kind']} {obj['metadata']['name']} reads as a "
                    "non-string in YAML, which kustomize cannot write as a generated key; "
                    "rename the key",
                    file=ctx.file,
                    field=where,
                )


def _parse_options(value: Any, *, ctx: _Context, where: str) -> _Options:
    if value is None:
        return _Options()
    if not isinstance(value, Mapping):
        raise KustomizeError("generator options must be a mapping", file=ctx.file, field=where)
    return _Options(
        labels=_string_map(value.get("labels"), ctx=ctx, where=f"{where}.labels"),
        annotations=_string_map(value.get("annotations"), ctx=ctx, where=f"{where}.annotations"),
        disable_hash=_bool(
            value.get("disableNameSuffixHash"), ctx=ctx, where=f"{where}.disableNameSuffixHash"
        ),
        immutable=_bool(value.get("immutable"), ctx=ctx, where=f"{where}.immutable"),
    )


def _string_map(value: Any, *, ctx: _Context, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise KustomizeError(
            'must map strings to strings; quote values such as "1", "true" or "yes"',
            file=ctx.file,
            field=where,
        )
    return dict(value)


def _bool(value: Any, *, ctx: _Context, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise KustomizeError("must be true or false", file=ctx.file, field=where)
    return value


def _string(value: Any, *, ctx: _Context, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KustomizeError("must be a string", file=ctx.file, field=where)
    return value


def _strings(value: Any, *, ctx: _Context, where: str) -> list[str]:
    items = _list(value, ctx=ctx, where=where)
    if not all(isinstance(item, str) for item in items):
        raise KustomizeError("must be a list of strings", file=ctx.file, field=where)
    return list(items)


def _list(value: Any, *, ctx: _Context, where: str) -> Sequence[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise KustomizeError("must be a list", file=ctx.file, field=where)
    return value


def _as_text(value: str | bytes) -> str | None:
    """``value`` as text, or None if it is bytes that are not valid UTF-8."""
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _base64(value: str | bytes) -> str:
    """Base64, as kustomize writes it: past 70 characters, 70 a line, newline-terminated."""
    raw = value.encode("utf-8") if isinstance(value, str) else value
    encoded = base64.b64encode(raw).decode("ascii")
    if len(encoded) <= _BASE64_LINE:
        return encoded
    lines = (encoded[at : at + _BASE64_LINE] for at in range(0, len(encoded), _BASE64_LINE))
    return "\n".join(lines) + "\n"


def _effective_namespace(namespace: str) -> str:
    return namespace or "default"


def _describe(resource: Resource) -> str:
    namespace = resource.id.namespace
    return f"{namespace}/{resource.name}" if namespace else resource.name
