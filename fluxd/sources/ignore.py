"""Which files of a fetched tree go into an artifact: Flux's `.sourceignore` rules.

Flux (source-controller `SourceIgnoreFilter` + fluxcd/pkg `sourceignore`) builds the
pattern list in this order, lowest priority first:

1. the VCS excludes, always: `.git/`, `.gitignore`, `.gitmodules`, `.gitattributes`;
2. the user's patterns: every `.sourceignore` in the tree (root first, then
   subdirectories depth-first in name order, each scoped to its own directory), then
   `spec.ignore` (scoped to the root);
3. only when step 2 yields **no** pattern at all, the default excludes take its place:
   images and archives (`*.jpg`, `*.png`, `*.tar.gz`, `*.zip`, ...), CI files
   (`.github/`, `.gitlab-ci.yml`, ...) and `**/.sops.yaml`, `**/.flux.yaml`,
   `**/.goreleaser.yml`.

So a `.sourceignore` or a `spec.ignore` *replaces* the defaults rather than adding to
them: with `spec.ignore: "/*\\n!/deploy"` a `deploy/logo.png` is kept, and an empty or
comment-only `spec.ignore` leaves the defaults in force. `.sourceignore` files under a
`.git` directory are not read; the `.sourceignore` files themselves stay in the
artifact unless a pattern excludes them.
"""

from __future__ import annotations

from collections.abc import Mapping

from fluxd.sources.gitignore import Matcher, Pattern, parse_patterns

__all__ = [
    "DEFAULT_EXCLUDES",
    "IGNORE_FILE",
    "VCS_EXCLUDES",
    "ignore_patterns",
    "select_files",
]

IGNORE_FILE = ".sourceignore"

VCS_EXCLUDES: tuple[str, ...] = (".git/", ".gitignore", ".gitmodules", ".gitattributes")

DEFAULT_EXCLUDES: tuple[str, ...] = (
    # extensions
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    # CI configuration
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    # tool configuration
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
)


def ignore_patterns(files: Mapping[str, bytes], *, spec_ignore: str | None) -> list[Pattern]:
    """The user's patterns (step 2 above), in increasing priority."""
    sources = []
    for path in files:
        parts = tuple(path.split("/"))
        if parts[-1] == IGNORE_FILE and ".git" not in parts[:-1]:
            sources.append(parts[:-1])
    patterns: list[Pattern] = []
    # Tuple order of the directory components is Flux's walk order: a directory's own
    # file before its subdirectories, siblings by name.
    for domain in sorted(sources):
        key = "/".join((*domain, IGNORE_FILE))
        patterns.extend(parse_patterns(_decode(files[key]), domain))
    if spec_ignore is not None:
        patterns.extend(parse_patterns(spec_ignore))
    return patterns


def select_files(files: Mapping[str, bytes], *, spec_ignore: str | None) -> dict[str, bytes]:
    """Return the files Flux would archive, keyed by `/`-separated relative path.

    `files` maps every regular file of the checkout to its content; directories are
    implied by the paths. The result keeps the input's content objects, sorted by path.
    """
    user = ignore_patterns(files, spec_ignore=spec_ignore)
    defaults = parse_patterns("\n".join(VCS_EXCLUDES))
    defaults += user or parse_patterns("\n".join(DEFAULT_EXCLUDES))
    matcher = Matcher(defaults)
    return {
        path: files[path]
        for path in sorted(files)
        if not matcher.is_ignored(path.split("/"), is_dir=False)
    }


def _decode(content: bytes) -> str:
    # Go reads ignore files as bytes and matches byte-wise; undecodable bytes can only
    # ever match themselves, which surrogateescape preserves.
    return content.decode("utf-8", errors="surrogateescape")
