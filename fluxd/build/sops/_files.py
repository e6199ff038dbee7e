"""SOPS-encrypted files: secretGenerator sources and Secret ``data`` entries.

Besides whole encrypted objects, kustomize-controller decrypts two kinds of files:

- before the build, the ``files``/``envs`` of every ``secretGenerator`` and the ``path``
  of every patch, in place, with the format taken from the file name (``envs`` default
  to dotenv) — the caller reads the file and writes back :func:`decrypt_file`'s bytes;
- after the build, every ``data`` entry of a Secret whose decoded value carries a SOPS
  marker (``sops_mac=ENC[`` for dotenv, ``"mac": "ENC[`` for JSON and binary,
  ``mac: ENC[`` for YAML): :func:`decrypt_secret_data`, output format from the key name.

The bytes written are what ``sops --decrypt`` prints, because a generated Secret's name
hash is computed over them: dotenv is ``KEY=value`` lines with newlines escaped as
``\\n`` and comments kept; JSON is Go's ``encoding/json`` style (HTML characters and
U+2028/2029 escaped, numbers as Go prints them, integers beyond int64 read as floats)
re-indented with tabs; binary is the raw ``data`` value. YAML and INI *output* are not
produced (their emitters are not reproduced here): such files fail with a clear error.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from fluxd.build.sops._decrypt import Comment, CommentKey, DecryptionError, decrypt_tree
from fluxd.yaml import YamlError, load_values

__all__ = [
    "Format",
    "decrypt_file",
    "decrypt_secret_data",
    "detect_format",
    "format_for_path",
    "has_marker",
]

Format = Literal["yaml", "json", "dotenv", "ini", "binary"]

_MARKERS: tuple[tuple[Format, bytes], ...] = (
    ("dotenv", b"sops_mac=ENC["),
    ("ini", b"[sops]"),
    ("json", b'"mac": "ENC['),  # binary files are a JSON envelope: same loader
    ("yaml", b"mac: ENC["),
)
_INT64 = (-(2**63), 2**63 - 1)


def format_for_path(path: str) -> Format:
    """The format Flux assumes for a file or a Secret key of that name."""
    if path.endswith(".dockerconfigjson") or path.endswith(".json"):
        return "json"
    if path.endswith((".yaml", ".yml")):
        return "yaml"
    if path.endswith(".env"):
        return "dotenv"
    if path.endswith(".ini"):
        return "ini"
    return "binary"


def detect_format(data: bytes) -> Format | None:
    """The SOPS input format of ``data`` from its marker bytes, or None if not SOPS."""
    for name, marker in _MARKERS:
        if marker in data:
            return name
    return None


def has_marker(data: bytes, fmt: Format) -> bool:
    """Whether ``data`` carries the SOPS marker of format ``fmt``: Flux decrypts a file
    referenced by a kustomization only then, and leaves it as it is otherwise."""
    wanted = "json" if fmt == "binary" else fmt
    return any(marker in data for name, marker in _MARKERS if name == wanted)


# -- loading ---------------------------------------------------------------------------------


def _unflatten(flat: Mapping[str, str]) -> dict[str, Any]:
    """sops' flattened dotenv metadata (``age__list_0__map_enc``) as nested values."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        parts = re.split(r"__(map|list)_", key)
        steps: list[str | int] = [parts[0]]
        for kind, token in zip(parts[1::2], parts[2::2], strict=True):
            steps.append(int(token) if kind == "list" and token.isdigit() else token)
        node: Any = root
        for step, following in itertools.pairwise(steps):
            empty: Any = [] if isinstance(following, int) else {}
            if isinstance(node, list):
                assert isinstance(step, int)
                while len(node) <= step:
                    node.append(None)
                if node[step] is None:
                    node[step] = empty
                node = node[step]
            else:
                node = node.setdefault(step, empty)
        last = steps[-1]
        if isinstance(node, list) and isinstance(last, int):
            while len(node) <= last:
                node.append(None)
            node[last] = value
        elif isinstance(node, dict):
            node[last] = value
    return root


def _load_dotenv(data: bytes) -> tuple[dict[Any, Any], dict[str, Any]]:
    tree: dict[Any, Any] = {}
    flat_metadata: dict[str, str] = {}
    comments = 0
    for raw in data.decode(errors="surrogateescape").split("\n"):
        if not raw:
            continue
        if raw.startswith("#"):
            tree[CommentKey(comments)] = Comment(raw[1:])
            comments += 1
            continue
        key, equals, value = raw.partition("=")
        if not equals:
            raise DecryptionError(f"invalid dotenv line (no '='): {key[:40]!r}")
        value = value.replace("\\n", "\n")
        if key.startswith("sops_"):
            flat_metadata[key[len("sops_") :]] = value
        else:
            tree[key] = value
    return tree, _unflatten(flat_metadata)


def _json_int(text: str) -> int | float:
    value = int(text)
    return value if _INT64[0] <= value <= _INT64[1] else float(text)


def _load_json(data: bytes) -> tuple[dict[Any, Any], dict[str, Any]]:
    try:
        document = json.loads(data, parse_int=_json_int)
    except (ValueError, UnicodeDecodeError) as error:
        raise DecryptionError(f"not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise DecryptionError("a SOPS JSON file must hold an object")
    return _split_metadata(document)


def _load_yaml(data: bytes) -> tuple[dict[Any, Any], dict[str, Any]]:
    try:
        documents = load_values(data, source="SOPS file")
    except YamlError as error:
        raise DecryptionError(str(error)) from None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise DecryptionError("only single-document YAML SOPS files are supported")
    return _split_metadata(documents[0])


def _split_metadata(document: dict[Any, Any]) -> tuple[dict[Any, Any], dict[str, Any]]:
    metadata = document.pop("sops", None)
    if not isinstance(metadata, dict):
        raise DecryptionError("no sops metadata mapping in the file")
    return document, metadata


# -- emitting --------------------------------------------------------------------------------


def _go_float(value: float) -> str:
    """A float as Go's ``encoding/json`` writes it."""
    if value != value or value in (float("inf"), float("-inf")):
        raise DecryptionError(f"unsupported JSON value {value}")
    magnitude = abs(value)
    if magnitude and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, exponent = repr(value).split("e")
        sign = exponent[0] if exponent[0] in "+-" else "+"
        return f"{mantissa}e{sign}{int(exponent.lstrip('+-'))}"
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}
_GO_ESCAPES |= {"\f": "\\f", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_GO_ESCAPES |= {"\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        elif "\udc80" <= char <= "\udcff":  # an invalid UTF-8 byte: Go escapes U+FFFD
            out.append("\\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _go_json(value: Any, depth: int = 0) -> str:
    """``json.Indent(encode(value), "", "\\t")`` as sops emits a plain JSON file."""
    inner, outer = "\n" + "\t" * (depth + 1), "\n" + "\t" * depth
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if not isinstance(k, CommentKey)]
        if not items:
            return "{}"
        body = ",".join(f"{inner}{_go_string(str(k))}: {_go_json(v, depth + 1)}" for k, v in items)
        return "{" + body + outer + "}"
    if isinstance(value, list):
        elements = [v for v in value if not isinstance(v, Comment)]
        if not elements:
            return "[]"
        return "[" + ",".join(inner + _go_json(v, depth + 1) for v in elements) + outer + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    return _go_string(str(value))


def _dotenv_value(value: Any) -> str:
    if isinstance(value, str):
        return value.replace("\n", "\\n")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise DecryptionError("cannot write a nested value to a dotenv file")
    return str(value)


def _emit(tree: dict[Any, Any], output: Format) -> bytes:
    if output == "json":
        return (_go_json(tree) + "\n").encode(errors="surrogateescape")
    if output == "dotenv":
        lines = []
        for key, value in tree.items():
            if isinstance(key, CommentKey):
                lines.append(f"#{value}\n")
            else:
                lines.append(f"{key}={_dotenv_value(value)}\n")
        return "".join(lines).encode(errors="surrogateescape")
    if output == "binary":
        data = tree.get("data")
        if not isinstance(data, str):
            raise DecryptionError("a binary SOPS file must hold a string 'data' value")
        return data.encode(errors="surrogateescape")
    raise DecryptionError(
        f"writing decrypted {output.upper()} is not supported by fluxd yet; keep the "
        "encrypted file in JSON, dotenv or binary form"
    )


# -- entry points ----------------------------------------------------------------------------


def decrypt_file(
    data: bytes,
    input_format: Format,
    output_format: Format,
    keys: Mapping[str, bytes],
    *,
    verify_mac: bool = False,
) -> bytes:
    """The plaintext of a SOPS-encrypted file, written as ``sops --decrypt`` writes it."""
    if input_format == "dotenv":
        tree, metadata = _load_dotenv(data)
    elif input_format in ("json", "binary"):
        tree, metadata = _load_json(data)
    elif input_format == "yaml":
        tree, metadata = _load_yaml(data)
    else:
        raise DecryptionError("reading encrypted INI files is not supported by fluxd yet")
    if not metadata.get("mac"):
        raise DecryptionError(f"no sops metadata found in the {input_format} file")
    decrypt_tree(tree, metadata, keys, verify_mac=verify_mac)
    return _emit(tree, output_format)


def decrypt_secret_data(obj: Mapping[str, Any], keys: Mapping[str, bytes]) -> dict[str, Any]:
    """A Secret whose SOPS-encrypted ``data`` entries are replaced by their plaintext.

    Entries that are not base64 or carry no SOPS marker are left alone (as in Flux, a
    bad value surfaces later, when the Secret is applied).
    """
    result = dict(obj)
    data = obj.get("data")
    if obj.get("kind") != "Secret" or not isinstance(data, Mapping):
        return result
    decrypted: dict[str, Any] = {}
    for key, value in data.items():
        decrypted[key] = value
        if not isinstance(value, str):
            continue
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            continue
        found = detect_format(raw)
        if found is None:
            continue
        try:
            plain = decrypt_file(raw, found, format_for_path(key), keys)
        except DecryptionError as error:
            metadata = obj.get("metadata") or {}
            where = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
            raise DecryptionError(
                f"failed to decrypt and format '{where}' Secret field '{key}': {error}"
            ) from None
        decrypted[key] = base64.b64encode(plain).decode()
    result["data"] = decrypted
    return result
