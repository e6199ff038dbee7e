"""Env files as kustomize reads them for ``configMapGenerator``/``secretGenerator`` ``envs``.

Kustomize's rules are simpler than a shell's, and fluxd must not be cleverer:

- lines end at ``\\n``; one trailing ``\\r`` is dropped (Go's ``bufio.ScanLines``);
- a UTF-8 byte-order mark is dropped from the first line only;
- leading whitespace is dropped; empty lines and lines starting with ``#`` are skipped;
- the key is everything before the first ``=``, trailing spaces included; the value is
  everything after it, verbatim: no quote removal, no trimming, no ``export``, no
  ``${VAR}`` expansion; a line without ``=`` is a key with an empty value;
- a line with an empty key (``=value``) is skipped silently;
- a line that is not valid UTF-8 is an error; so is a line longer than Go's scanner
  buffer (64 KiB), where kustomize gives up with ``token too long``.

Keys are not validated: kubectl's kustomize accepts ``foo bar`` as a key.
"""

from __future__ import annotations

from fluxd.kustomize._model import KustomizeError

__all__ = ["parse_env_file"]

_BOM = b"\xef\xbb\xbf"
# bufio.Scanner's default limit: a line and its newline must fit in 64 KiB.
_MAX_LINE = 64 * 1024
# What Go's unicode.IsSpace accepts (Python's str.isspace also takes \x1c-\x1f).
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)


def parse_env_file(
    content: bytes, *, path: str, file: str | None = None, field: str | None = None
) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of an env file, in file order.

    ``path`` names the env file in messages; ``file`` and ``field`` say which
    kustomization (default: the env file itself) and field listed it.
    """
    where = {"file": file or path, "field": field}
    pairs: list[tuple[str, str]] = []
    for number, raw in enumerate(_scan_lines(content, path=path, where=where)):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise KustomizeError(
                f"env file {path} line {number + 1} is not valid UTF-8; "
                "save the file as UTF-8 or move binary data to `files`",
                **where,
            ) from None
        if number == 0:
            line = line.removeprefix(_BOM.decode("utf-8"))
        line = line.lstrip(_GO_SPACE)
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if key:
            pairs.append((key, value))
    return pairs


def _scan_lines(content: bytes, *, path: str, where: dict[str, str | None]) -> list[bytes]:
    lines = content.split(b"\n")
    if lines and lines[-1] == b"":
        # A final newline ends the last line; it does not start an empty one.
        lines.pop()
    for number, line in enumerate(lines):
        if len(line) + 1 > _MAX_LINE:
            raise KustomizeError(
                f"env file {path} line {number + 1} is longer than 64 KiB "
                "(kustomize stops with `token too long`); move the value to `files`",
                **where,
            )
    return [line.removesuffix(b"\r") for line in lines]
