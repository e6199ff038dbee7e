"""Reading a build's inputs: the files map, kustomization files, resource files.

A build sees one source artifact as a map of posix paths (relative to the artifact root)
to bytes, and nothing else: there is no disk, no network, no home directory. Paths in a
kustomization are resolved against the kustomization's directory and may climb with
``../`` anywhere inside the artifact (Flux builds with kustomize's load restrictions off),
never above its root.

Kustomization files are checked the way kustomize checks them (unknown fields, kind and
apiVersion), and deprecated fields are folded into their successors as kustomize 5.7
does (``bases`` into ``resources``, ``imageTags`` into ``images``). What fluxd will not
do is refused here, before anything runs: remote resources, helm charts.

A build may also be given an :class:`Overlay`: edits to the top kustomization made before
kustomize reads it, the way a GitOps controller that rewrites that file makes them. That
lets a caller add fields without writing into the artifact, in kustomize's own terms.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fluxd.kustomize._documents import load_documents
from fluxd.kustomize._field_names import canonical_field_names
from fluxd.kustomize._model import KustomizeError, Resource

__all__ = [
    "KUSTOMIZATION_FILE_NAMES",
    "Files",
    "Kustomization",
    "Overlay",
    "ReadFile",
    "SourceFile",
    "apply_overlay",
    "generate_kustomization",
    "load_resources",
    "looks_remote",
    "read_kustomization",
    "resolve",
    "scalar_text",
    "source_files",
    "stringify_annotations",
    "top_directory",
]

#: Reads a file named relative to a kustomization's directory (what the stages get).
ReadFile = Callable[[str], bytes]

KUSTOMIZATION_FILE_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

KUSTOMIZATION_API_VERSION = "kustomize.config.k8s.io/v1beta1"
COMPONENT_API_VERSION = "kustomize.config.k8s.io/v1alpha1"

#: Top-level fields of kustomize 5.7's Kustomization type; anything else is an error.
_KNOWN_FIELDS = frozenset(
    {
        "apiVersion",
        "kind",
        "metadata",
        "openapi",
        "namePrefix",
        "nameSuffix",
        "namespace",
        "commonLabels",
        "labels",
        "commonAnnotations",
        "patchesStrategicMerge",
        "patchesJson6902",
        "patches",
        "images",
        "replacements",
        "replicas",
        "vars",
        "sortOptions",
        "resources",
        "components",
        "crds",
        "bases",
        "configMapGenerator",
        "secretGenerator",
        "helmGlobals",
        "helmCharts",
        "helmChartInflationGenerator",
        "generatorOptions",
        "configurations",
        "generators",
        "transformers",
        "validators",
        "buildMetadata",
    }
)

_LIST_FIELDS = (
    "resources",
    "bases",
    "components",
    "crds",
    "configurations",
    "generators",
    "transformers",
    "validators",
)

_STRING_FIELDS = ("apiVersion", "kind", "namePrefix", "nameSuffix", "namespace")
_STRING_MAP_FIELDS = ("commonLabels", "commonAnnotations")

_REMOTE = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://|git::|git@|(?:www\.)?(?:github\.com|gitlab\.com|bitbucket\.org)/)",
    re.IGNORECASE,
)


def looks_remote(reference: str) -> bool:
    """Whether kustomize would fetch ``reference`` over the network (URL, git repo)."""
    return bool(_REMOTE.match(reference)) or "?ref=" in reference or "//" in reference


class Files:
    """The source artifact: a read-only map of normalized posix paths to contents.

    Contents are read from ``files`` when the build asks for them, never copied up
    front: an artifact's files may live in the content store, partly on disk, and a
    build reads only the few it needs of a large repository.
    """

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self._source = files
        index = _INDEXES.get(id(files))
        if index is None:
            index = _index(files)
            try:
                # A shared artifact tree is built from many times: index it once.
                weakref.finalize(files, _INDEXES.pop, id(files), None)
                _INDEXES[id(files)] = index
            except TypeError:
                pass  # a plain dict (a local build, a test): indexed per build
        self._files, self._dirs = index

    def is_file(self, path: str) -> bool:
        return path in self._files

    def is_dir(self, path: str) -> bool:
        return path in self._dirs

    def read(self, path: str) -> bytes:
        try:
            return self._source[self._files[path]]
        except KeyError:
            raise KustomizeError(f"file {path!r} not found") from None

    def children(self, directory: str) -> list[str]:
        """Names directly inside ``directory``, sorted as Go's filepath.Walk visits them."""
        prefix = "" if directory == "." else directory + "/"
        names = {
            path[len(prefix) :].split("/", 1)[0]
            for path in (*self._files, *self._dirs)
            if path.startswith(prefix) and path != directory and path != "."
        }
        return sorted(names, key=lambda name: name.encode())

    def walk_files(self, directory: str) -> Iterator[str]:
        """Files under ``directory``, depth first in lexical order."""
        for name in self.children(directory):
            path = join(directory, name)
            if self.is_dir(path):
                yield path
                yield from self.walk_files(path)
            else:
                yield path


#: Indexes of the weakly referenceable file maps (artifact trees) by id, while they live.
_INDEXES: dict[int, tuple[dict[str, str], set[str]]] = {}


def _index(files: Mapping[str, bytes]) -> tuple[dict[str, str], set[str]]:
    """Normalized path -> key in ``files``, and every directory, of a file map."""
    paths: dict[str, str] = {}
    dirs: set[str] = {"."}
    for raw in files:
        path = posixpath.normpath(raw.lstrip("/")) if raw else "."
        if path == ".." or path.startswith("../"):
            raise KustomizeError(f"invalid path {raw!r} in the source artifact")
        if raw.endswith("/") or path == ".":
            # A directory entry (as archives list them): nothing to read.
            parent = path
        else:
            paths[path] = raw
            parent = posixpath.dirname(path)
        # Stop at the first known directory: its parents are known too.
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    return paths, dirs


def join(directory: str, name: str) -> str:
    return posixpath.normpath(posixpath.join(directory, name))


def resolve(directory: str, reference: str, *, kustomization_file: str, field: str) -> str:
    """``reference`` relative to ``directory``; refuses to leave the artifact root."""
    if reference.startswith("/"):
        raise KustomizeError(
            f"absolute path {reference!r} is not allowed: paths are relative to the"
            " kustomization and must stay inside the source artifact",
            file=kustomization_file,
            field=field,
        )
    path = join(directory, reference)
    if path == ".." or path.startswith("../"):
        raise KustomizeError(
            f"path {reference!r} points outside the source artifact root",
            file=kustomization_file,
            field=field,
        )
    return path


def top_directory(path: str) -> str:
    """The directory a build of ``path`` starts in, normalized; it must stay inside the
    artifact. A leading slash still means the artifact root, as in Flux's SecureJoin."""
    return resolve(".", path.lstrip("/") or ".", kustomization_file="(build path)", field="path")


@dataclass
class Kustomization:
    """A kustomization file, checked and with deprecated fields folded in."""

    directory: str
    file: str
    data: dict[str, Any]
    #: Per list field, the index where the entries an :class:`Overlay` appended start
    #: (they follow the file's own), so errors name them as the overlay's author wrote
    #: them (``spec.patches[0]``), not as entries of a file that does not hold them.
    overlay_entries: dict[str, int] = dataclasses.field(default_factory=dict)
    #: :attr:`Overlay.name` of the overlay those entries came from.
    overlay_name: str = ""

    @property
    def is_component(self) -> bool:
        return self.data.get("kind") == "Component"

    def paths(self, field: str) -> list[str]:
        value = self.data.get(field) or []
        return [str(entry) for entry in value]


@dataclass(frozen=True, kw_only=True)
class Overlay:
    """Edits to the top kustomization, made before the build reads it.

    The file is decoded, edited and written back (see :func:`read_kustomization`), and a
    generated kustomization is edited the same way. ``namespace``, ``namePrefix`` and
    ``nameSuffix`` replace the file's, and so does a non-empty ``buildMetadata``;
    ``patches`` and ``components`` are appended to its
    own (components are resolved against the top directory, like the file's); an
    ``images`` entry replaces the file's entry for the same image name, or is appended.
    Empty values edit nothing.
    """

    namespace: str = ""
    name_prefix: str = ""
    name_suffix: str = ""
    patches: Sequence[Mapping[str, Any]] = ()
    images: Sequence[Mapping[str, Any]] = ()
    components: Sequence[str] = ()
    #: ``buildMetadata`` options (``originAnnotations``, ``transformerAnnotations``);
    #: a non-empty list replaces the file's own.
    build_metadata: Sequence[str] = ()
    #: Leave out the components that are not directories of the artifact instead of
    #: failing the build on them (each must still be a path inside the artifact).
    skip_missing_components: bool = False
    #: What errors call the overlay's entries, which no file holds: with ``spec``, the
    #: first patch is ``spec.patches[0]``.
    name: str = "overlay"


def apply_overlay(kustomization: Kustomization, overlay: Overlay, files: Files) -> None:
    """Edit ``kustomization`` in place as :class:`Overlay` describes."""
    data = kustomization.data
    for key, value in (
        ("namespace", overlay.namespace),
        ("namePrefix", overlay.name_prefix),
        ("nameSuffix", overlay.name_suffix),
    ):
        if value:
            data[key] = value
    if overlay.build_metadata:
        data["buildMetadata"] = list(overlay.build_metadata)
    if overlay.patches:
        own = list(data.get("patches") or [])
        kustomization.overlay_entries["patches"] = len(own)
        kustomization.overlay_name = overlay.name
        data["patches"] = [*own, *overlay.patches]
    images = list(data.get("images") or [])
    for image in overlay.images:
        names = [entry.get("name") for entry in images]
        if image.get("name") in names:
            images[names.index(image.get("name"))] = dict(image)
        else:
            images.append(dict(image))
    if images:
        data["images"] = images
    components = list(overlay.components)
    if overlay.skip_missing_components:
        components = [
            entry
            for entry in components
            if files.is_dir(
                resolve(
                    kustomization.directory,
                    entry,
                    kustomization_file=kustomization.file,
                    field="components",
                )
            )
        ]
    if components:
        data["components"] = [*(data.get("components") or []), *components]


def read_kustomization(
    files: Files, directory: str, *, rewritten: bool = False
) -> Kustomization | None:
    """The kustomization file of ``directory``, or None when it has none.

    ``rewritten`` reads it as kustomize reads it after a tool rewrote it (what an
    :class:`Overlay` stands for): the tool decodes it leniently and writes it back, so
    unknown top-level fields (``imageTags`` included) vanish instead of failing the build.
    """
    found = [
        join(directory, name)
        for name in KUSTOMIZATION_FILE_NAMES
        if files.is_file(join(directory, name))
    ]
    if not found:
        return None
    if len(found) > 1:
        raise KustomizeError(
            f"Found multiple kustomization files under: {directory}"
            f" ({', '.join(posixpath.basename(path) for path in found)}); keep only one"
        )
    file = found[0]
    raw = files.read(file)
    if not rewritten:
        # kustomize renames the deprecated field textually, before parsing.
        raw = raw.replace(b"imageTags:", b"images:")
    # kustomize decodes its own file into Go structs, without the resources' round trip.
    documents = load_documents(raw, source=file, kyaml_round_trip=False)
    if len(documents) > 1:
        raise KustomizeError("a kustomization file must hold one YAML document", file=file)
    if not documents:
        raise KustomizeError(f"{posixpath.basename(file)} is empty", file=file)
    data = documents[0]
    if isinstance(data, dict):
        data = canonical_field_names(data)
    if rewritten and isinstance(data, dict):
        data = {key: value for key, value in data.items() if key in _KNOWN_FIELDS}
    if isinstance(data, dict) and _is_empty(data):
        raise KustomizeError(f"{posixpath.basename(file)} is empty", file=file)
    return Kustomization(directory, file, _normalize(data, file))


def _is_empty(data: Mapping[str, Any]) -> bool:
    """Kustomize's test: nothing but apiVersion and kind decodes to a non-zero value.

    An unknown field is not empty: it fails the strict decoding first.

    (``resources: []`` counts as something, ``namespace: ""`` does not, as in Go.)
    """
    return all(
        value is None or (value in ("", 0) and not isinstance(value, list | dict))
        for key, value in data.items()
        if key not in ("apiVersion", "kind")
    ) and all(key in _KNOWN_FIELDS for key in data)


def _json_type(value: Any) -> str:
    """What Go's encoding/json calls a decoded YAML value, for kustomize's messages."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _check_types(data: dict[str, Any], file: str) -> None:
    def fail(value: Any, field: str, expected: str) -> KustomizeError:
        return KustomizeError(
            f"invalid Kustomization: json: cannot unmarshal {_json_type(value)} into Go struct"
            f" field Kustomization.{field} of type {expected}",
            file=file,
            field=field,
        )

    for field in _STRING_FIELDS:
        value = data.get(field)
        if value is not None and not isinstance(value, str):
            raise fail(value, field, "string")
    for field in _LIST_FIELDS:
        value = data.get(field)
        if value is not None and not isinstance(value, list):
            raise fail(value, field, "[]string")
    for field in _LIST_FIELDS:
        for entry in data.get(field) or []:
            if not isinstance(entry, str):
                raise fail(entry, field, "string")
    for field in _STRING_MAP_FIELDS:
        value = data.get(field)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise fail(value, field, "map[string]string")
        for entry in value.values():
            if entry is not None and not isinstance(entry, str):
                raise fail(entry, field, "string")


def _normalize(data: Any, file: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise KustomizeError("invalid Kustomization: expected a YAML map", file=file)
    for key in data:
        if key not in _KNOWN_FIELDS:
            raise KustomizeError(f'invalid Kustomization: json: unknown field "{key}"', file=file)
    _check_types(data, file)
    kind = data.get("kind") or ""
    if kind not in ("", "Kustomization", "Component"):
        raise KustomizeError("kind should be Kustomization or Component", file=file, field="kind")
    api_version = data.get("apiVersion") or ""
    required = COMPONENT_API_VERSION if kind == "Component" else KUSTOMIZATION_API_VERSION
    if api_version and api_version != required:
        raise KustomizeError(
            f"apiVersion for {kind or 'Kustomization'} should be {required}",
            file=file,
            field="apiVersion",
        )
    for field in ("helmCharts", "helmChartInflationGenerator", "helmGlobals"):
        if data.get(field):
            raise KustomizeError(
                f"{field} is not supported yet: render the chart with a HelmRelease instead",
                file=file,
                field=field,
            )
    normalized = dict(data)
    bases = normalized.pop("bases", None) or []
    if bases:
        normalized["resources"] = [*(normalized.get("resources") or []), *bases]
    return normalized


def generate_kustomization(files: Files, directory: str) -> Kustomization:
    """A kustomization for a directory without one: it lists the directory's manifests.

    Every ``.yaml``/``.yml`` file below ``directory`` becomes a resource, in lexical walk
    order; a subdirectory holding a kustomization file is listed as a directory instead of
    being walked. A YAML file that is not Kubernetes objects fails the build, as in Flux.
    """
    resources: list[str] = []
    for path in _walk(files, directory):
        relative = posixpath.relpath(path, directory)
        if files.is_dir(path):
            resources.append(relative)
            continue
        for obj in load_documents(files.read(path), source=path):
            _check_object(obj, path)
        resources.append(relative)
    file = join(directory, KUSTOMIZATION_FILE_NAMES[0])
    data = {
        "apiVersion": KUSTOMIZATION_API_VERSION,
        "kind": "Kustomization",
        "resources": resources,
    }
    return Kustomization(directory, file, data)


def _walk(files: Files, directory: str) -> Iterator[str]:
    for name in files.children(directory):
        path = join(directory, name)
        if files.is_dir(path):
            if read_kustomization(files, path) is not None:
                yield path
            else:
                yield from _walk(files, path)
        elif posixpath.splitext(name)[1] in (".yaml", ".yml"):
            yield path


def _check_object(obj: Any, path: str) -> None:
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        raise KustomizeError(
            f"failed to decode Kubernetes YAML from {path}: missing Resource metadata"
        )
    if not obj.get("kind"):
        raise KustomizeError(f"failed to decode Kubernetes YAML from {path}: missing kind")


def load_resources(files: Files, path: str) -> list[Resource]:
    """The objects in a resource file (multi-document; ``*List`` kinds are unpacked)."""
    resources: list[Resource] = []
    for document in load_documents(files.read(path), source=path):
        for obj in _unpack_lists(document, path):
            stringify_annotations(obj)
            resources.append(Resource(obj=obj, origin=path))
    return resources


def stringify_annotations(obj: dict[str, Any]) -> None:
    """Annotation values become strings, as kustomize re-sets them as a string map.

    Kustomize does it on load and again when it strips its build annotations at the end,
    so a number a replacement or var wrote into an annotation comes out quoted too.

    (``1`` turns into ``"1"``, ``true`` into ``"true"``, ``null`` into ``"null"``. A float
    is printed back from its value, so ``1.50`` becomes ``"1.5"`` where kustomize keeps the
    text as written.)
    """
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict):
        return
    for key, value in annotations.items():
        if value is None:
            annotations[key] = "null"
        elif isinstance(value, bool | int | float):
            annotations[key] = scalar_text(value)


def scalar_text(value: bool | int | float) -> str:
    """A decoded YAML boolean or number as the string kustomize makes of it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _unpack_lists(obj: Any, path: str) -> Iterator[dict[str, Any]]:
    if obj is None:
        return
    if not isinstance(obj, dict):
        raise KustomizeError("missing Resource metadata", file=path)
    kind = str(obj.get("kind") or "")
    if not isinstance(obj.get("metadata"), dict) and not kind.endswith("List"):
        raise KustomizeError("missing Resource metadata", file=path)
    if kind.endswith("List") and isinstance(obj.get("items"), list):
        for item in obj["items"]:
            yield from _unpack_lists(item, path)
        return
    if not kind:
        raise KustomizeError(
            f"missing kind in object {_describe(obj)}: every object needs apiVersion and kind",
            file=path,
        )
    if not (obj.get("metadata") or {}).get("name"):
        raise KustomizeError(f"missing metadata.name in object {_describe(obj)}", file=path)
    yield obj


def _describe(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    parts = [str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")]
    name = str(metadata.get("name") or "")
    return "/".join(part for part in parts if part) + (f" {name}" if name else "")


# -- files read whole by generators and patches ----------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    """A file a kustomization reads whole: a ``secretGenerator`` source or a patch file."""

    #: The file, normalized and relative to the artifact root.
    path: str
    #: ``files`` or ``envs`` of a ``secretGenerator`` entry, or ``patches``.
    field: Literal["files", "envs", "patches"]
    #: What the entry names it by: the key of a ``files`` entry (``key=path``, or the path
    #: when there is no key), the reference as written otherwise. Flux picks the SOPS
    #: format of the file from this name.
    name: str
    #: The kustomization file holding the reference.
    kustomization_file: str


def source_files(
    files: Files, directory: str, *, generate_missing: bool, overlay: Overlay | None
) -> Iterator[SourceFile]:
    """The secretGenerator ``files``/``envs`` and patch ``path`` files of a build.

    Walks the kustomization in ``directory`` (read, or generated, as the build with the
    same ``generate_missing`` and ``overlay`` reads the top one) and every kustomization
    reachable from it through ``resources`` that are directories and ``components`` —
    the overlay's components last — each directory once. These are the references Flux's
    kustomize-controller decrypts before the build; each existing file is yielded once,
    first reference first. What does not resolve to a file inside the artifact (remote,
    missing, climbing above the root) is skipped: the build itself reports it. The legacy
    ``env`` field and ``patchesStrategicMerge`` are not followed, as in Flux.
    """
    if not files.is_dir(directory):
        return
    root = read_kustomization(files, directory, rewritten=overlay is not None)
    if root is None:
        if not generate_missing:
            return
        root = generate_kustomization(files, directory)
    components = overlay.components if overlay is not None else ()
    extra = [join(directory, entry) for entry in components if not entry.startswith("/")]
    seen_dirs: set[str] = set()
    seen_files: set[str] = set()
    for source in _walk_sources(files, root, extra, seen_dirs):
        if source.path not in seen_files:
            seen_files.add(source.path)
            yield source


def _inside(directory: str, reference: Any) -> str | None:
    """``reference`` joined to ``directory``, or None if it cannot be a local path."""
    if not isinstance(reference, str) or not reference or reference.startswith("/"):
        return None
    if looks_remote(reference):
        return None
    path = join(directory, reference)
    if path == ".." or path.startswith("../"):
        return None
    return path


def _walk_sources(
    files: Files, kustomization: Kustomization, extra: list[str], seen_dirs: set[str]
) -> Iterator[SourceFile]:
    seen_dirs.add(kustomization.directory)
    yield from _own_sources(files, kustomization)
    references = [*kustomization.paths("resources"), *kustomization.paths("components")]
    below = [_inside(kustomization.directory, reference) for reference in references]
    for path in [*below, *extra]:
        if path is None or path in seen_dirs or not files.is_dir(path):
            continue
        seen_dirs.add(path)
        child = read_kustomization(files, path)
        if child is not None:
            yield from _walk_sources(files, child, [], seen_dirs)


def _own_sources(files: Files, k: Kustomization) -> Iterator[SourceFile]:
    def found(
        reference: Any, field: Literal["files", "envs", "patches"], name: str
    ) -> Iterator[SourceFile]:
        path = _inside(k.directory, reference)
        if path is not None and files.is_file(path):
            yield SourceFile(path, field, name, k.file)

    generators = k.data.get("secretGenerator")
    for entry in generators if isinstance(generators, list) else []:
        if not isinstance(entry, dict):
            continue
        sources = entry.get("files")
        for source in sources if isinstance(sources, list) else []:
            if isinstance(source, str):
                key, equals, reference = source.partition("=")
                yield from found(reference if equals else key, "files", key)
        envs = entry.get("envs")
        for env in envs if isinstance(envs, list) else []:
            if isinstance(env, str):
                yield from found(env, "envs", env)
    patches = k.data.get("patches")
    for patch in patches if isinstance(patches, list) else []:
        if isinstance(patch, dict) and isinstance(patch.get("path"), str):
            yield from found(patch["path"], "patches", patch["path"])
