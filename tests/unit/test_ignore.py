"""Flux's ignore rules: the gitignore matcher and the `.sourceignore` / `spec.ignore` layering."""

from __future__ import annotations

import pytest

from fluxd.sources.gitignore import Match, Matcher, parse_pattern, parse_patterns
from fluxd.sources.ignore import select_files


def ignored(patterns: str, path: str, *, is_dir: bool = False, domain: str = "") -> bool:
    parts = tuple(domain.split("/")) if domain else ()
    return Matcher(parse_patterns(patterns, parts)).is_ignored(path.split("/"), is_dir=is_dir)


# --- pattern syntax ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # a name without a slash matches a component at any depth
        ("vendor", "vendor", True),
        ("vendor", "x/vendor/lib.go", True),
        ("vendor", "vendors/lib.go", False),
        ("*.md", "docs/deep/README.md", True),
        ("*.md", "README.mdx", False),
        # `*` and `?` stay inside one component
        ("docs/*.md", "docs/a/b.md", False),
        ("docs/*", "docs/a/b.md", True),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file10.txt", False),
        # a leading or middle slash anchors to the declaring directory
        ("/config.yaml", "config.yaml", True),
        ("/config.yaml", "apps/config.yaml", False),
        ("deploy/base", "deploy/base/app.yaml", True),
        ("deploy/base", "x/deploy/base/app.yaml", False),
        # `**`
        ("**/foo", "foo", True),
        ("**/foo", "a/b/foo", True),
        ("**/foo", "a/foo/bar.yaml", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/x/c", False),
        ("a/**", "a/x/y", True),
        ("a/**", "b/a/x", False),
        ("a/x**/b", "a/xy/b", False),  # `**` inside a component never matches (go-git)
        # character classes
        ("file[0-9].txt", "file7.txt", True),
        ("file[0-9].txt", "filex.txt", False),
        ("[!a]*.md", "b.md", True),
        ("[!a]*.md", "a.md", False),
        ("[^a]*.md", "a.md", False),
        ("x[]]y", "x]y", True),
        ("x[a-]y", "x-y", True),
        ("[[:digit:]][[:upper:]]", "1A", True),
        ("[[:digit:]][[:upper:]]", "1a", False),
        ("[abc", "[abc", False),  # malformed: never matches
        ("[z-a]", "m", False),
        # escapes and trailing spaces
        ("\\!important.yaml", "!important.yaml", True),
        ("\\#notes", "#notes", True),
        ("foo\\ ", "foo ", True),
        ("foo   ", "foo", True),
        ("\\*", "*", True),
        ("\\*", "x", False),
        ("x\\", "x\\", False),
        ("*", "any/thing", True),
    ],
)
def test_pattern_matching(pattern: str, path: str, expected: bool) -> None:
    assert ignored(pattern, path) is expected


# Behaviours of the go-git matcher Flux vendors, as (pattern, domain, path, is_dir, result).
GO_GIT_CASES = [
    ("!vul?ano", "", "value/vulkano/tail", False, Match.INCLUDE),
    ("value", "head/middle/tail", "head/middle", False, None),
    ("value", "head/middle/tail", "head/middle/tail", False, None),
    ("value", "head/middle/tail", "head/middle/_tail_/value", False, None),
    ("middle/", "value/volcano", "value/volcano/middle/tail", False, Match.EXCLUDE),
    ("volcano/", "value/volcano", "value/volcano/tail", True, None),
    ("value", "", "value/tail", False, Match.EXCLUDE),
    ("value", "", "head/value/tail", False, Match.EXCLUDE),
    ("value", "", "head/value", False, Match.EXCLUDE),
    ("value/", "", "head/value/tail", False, Match.EXCLUDE),
    ("value/", "", "head/value", True, Match.EXCLUDE),
    ("value/", "", "head/value", False, None),
    ("value", "", "head/val/tail", False, None),
    ("val", "", "head/value/tail", False, None),
    ("v*o", "", "value/vulkano/tail", False, Match.EXCLUDE),
    ("v[ou]l[kc]ano", "", "value/volcano", False, Match.EXCLUDE),
    ("v[ou]l[", "", "value/vol[", False, None),
    ("/value/vul?ano", "", "value/vulkano/tail", False, Match.EXCLUDE),
    ("middle/tail/", "value/volcano", "value/volcano/middle/tail", True, Match.EXCLUDE),
    ("volcano/tail", "value/volcano", "value/volcano/tail", False, None),
    ("value/vul?ano", "", "value/vulkano/tail", False, Match.EXCLUDE),
    ("value/vulkano", "", "value/volcano", False, None),
    ("value/vul?ano", "", "value", False, None),
    ("/value/volcano", "", "value/value/volcano", False, None),
    ("**/*lue/vol?ano", "", "value/volcano/tail", False, Match.EXCLUDE),
    ("**/*lue/vol?ano", "", "head/value/volcano/tail", False, Match.EXCLUDE),
    ("**/*lue/vol?ano", "", "head/value/Volcano/tail", False, None),
    ("**/*lue/vol?ano/", "", "head/value/volcano/tail", False, Match.EXCLUDE),
    ("**/*lue/vol?ano/", "", "head/value/volcano", True, Match.EXCLUDE),
    ("**/*lue/vol?ano/", "", "head/value/Colcano", True, None),
    ("**/*lue/vol?ano/", "", "head/value/volcano", False, None),
    ("/*lue/vol?ano/**", "", "value/volcano/tail/moretail", False, Match.EXCLUDE),
    ("/*lue/vol?ano/**", "", "value/volcano", False, Match.EXCLUDE),
    ("/*lue/**/vol?ano", "", "value/volcano", False, Match.EXCLUDE),
    ("/*lue/**/vol?ano", "", "value/middle/volcano", False, Match.EXCLUDE),
    ("/*lue/**/vol?ano", "", "value/middle1/middle2/volcano", False, Match.EXCLUDE),
    ("/*lue/**/vol?ano/", "", "value/middle1/middle2/volcano", True, Match.EXCLUDE),
    ("/*lue/**/vol?ano/", "", "value/middle1/middle2/volcano", False, None),
    ("/*lue/**/vol?ano/", "", "value/middle1/middle2/volcano/tail", False, Match.EXCLUDE),
    ("/*lue/**foo/vol?ano", "", "value/foo/volcano/tail", False, None),
    ("**/head/v[ou]l[kc]ano", "", "value/head/volcano", False, Match.EXCLUDE),
    ("**/head/v[ou]l[", "", "value/head/vol[", False, None),
    ("/value/**/v[ou]l[", "", "value/head/vol[", False, None),
    (
        "**/android/**/GeneratedPluginRegistrant.java",
        "",
        "packages/flutter_tools/lib/src/android/gradle.dart",
        False,
        None,
    ),
]


@pytest.mark.parametrize(("pattern", "domain", "path", "is_dir", "expected"), GO_GIT_CASES)
def test_go_git_behaviour(
    pattern: str, domain: str, path: str, is_dir: bool, expected: Match | None
) -> None:
    parsed = parse_pattern(pattern, tuple(domain.split("/")) if domain else ())
    assert parsed.match(path.split("/"), is_dir=is_dir) is expected


def test_dir_only_patterns_need_a_directory() -> None:
    assert ignored("build/", "build", is_dir=True)
    assert not ignored("build/", "build")
    assert ignored("build/", "build/out.yaml")
    assert ignored("build/", "src/build/out.yaml")
    assert not ignored("out/build/", "out/build")
    assert ignored("out/build/", "out/build/x")


def test_later_patterns_win_and_negation_re_includes() -> None:
    assert not ignored("*.yaml\n!keep.yaml", "keep.yaml")
    assert ignored("*.yaml\n!keep.yaml", "drop.yaml")
    assert ignored("!keep.yaml\n*.yaml", "keep.yaml")
    # Flux checks files one by one, so unlike git a file under an excluded directory
    # can be re-included.
    assert not ignored("secrets/\n!secrets/public.yaml", "secrets/public.yaml")
    assert ignored("secrets/\n!secrets/public.yaml", "secrets/private.yaml")


def test_comments_blank_lines_and_crlf() -> None:
    patterns = parse_patterns("# a comment\r\n\r\n   \r\n*.txt\r\n #not-a-comment\r\n")
    assert [p.source for p in patterns] == ["*.txt", " #not-a-comment"]
    assert Matcher(patterns).is_ignored(["notes.txt"])


def test_patterns_are_scoped_to_their_domain() -> None:
    assert ignored("*.md", "apps/README.md", domain="apps")
    assert not ignored("*.md", "README.md", domain="apps")
    assert ignored("/local.yaml", "apps/local.yaml", domain="apps")
    assert not ignored("/local.yaml", "apps/sub/local.yaml", domain="apps")
    assert not ignored("*", "apps", is_dir=True, domain="apps")


def test_parse_pattern_fields() -> None:
    pattern = parse_pattern("!/deploy/", ("apps",))
    assert pattern.negated
    assert pattern.dir_only
    assert pattern.domain == ("apps",)
    assert pattern.match(["apps", "deploy"], is_dir=True) is Match.INCLUDE
    assert pattern.match(["deploy"], is_dir=True) is None


# --- Flux's layering -----------------------------------------------------------------------

TREE = {
    ".git/config": b"",
    ".git/objects/ab/cdef": b"",
    ".gitignore": b"bin/\n",
    ".gitmodules": b"",
    ".gitattributes": b"",
    ".github/workflows/ci.yml": b"",
    ".gitlab-ci.yml": b"",
    "cloudbuild.yaml": b"",
    "docs/logo.png": b"\x89PNG",
    "docs/photo.JPG": b"",
    "charts/app-1.0.0.tar.gz": b"",
    "release.zip": b"",
    ".sops.yaml": b"",
    "clusters/prod/.sops.yaml": b"",
    "clusters/prod/.flux.yaml": b"",
    ".goreleaser.yml": b"",
    "README.md": b"# readme",
    "deploy/app.yaml": b"kind: Deployment",
    "deploy/README.md": b"",
    "deploy/sub/notes.txt": b"",
    "deploy/sub/service.yaml": b"kind: Service",
    "apps/kustomization.yaml": b"resources: []",
}


def test_defaults_exclude_vcs_ci_media_and_tool_files() -> None:
    selected = select_files(TREE, spec_ignore=None)
    assert sorted(selected) == [
        "README.md",
        "apps/kustomization.yaml",
        "deploy/README.md",
        "deploy/app.yaml",
        "deploy/sub/notes.txt",
        "deploy/sub/service.yaml",
        "docs/photo.JPG",  # matching is case-sensitive, as in Flux
    ]
    assert selected["deploy/app.yaml"] is TREE["deploy/app.yaml"]


def test_spec_ignore_replaces_the_defaults_but_not_the_vcs_excludes() -> None:
    selected = select_files(TREE, spec_ignore="*.md\n")
    assert "docs/logo.png" in selected
    assert ".github/workflows/ci.yml" in selected
    assert ".sops.yaml" in selected
    assert "README.md" not in selected
    assert not [path for path in selected if path.startswith(".git/")]
    assert ".gitignore" not in selected


@pytest.mark.parametrize("spec_ignore", ["", "# only a comment\n\n"])
def test_spec_ignore_without_patterns_keeps_the_defaults(spec_ignore: str) -> None:
    assert select_files(TREE, spec_ignore=spec_ignore) == select_files(TREE, spec_ignore=None)


def test_flux_documented_spec_ignore_example() -> None:
    spec_ignore = (
        "# exclude all\n"
        "/*\n"
        "# include deploy dir\n"
        "!/deploy\n"
        "# exclude file extensions from deploy dir\n"
        "/deploy/**/*.md\n"
        "/deploy/**/*.txt\n"
    )
    assert sorted(select_files(TREE, spec_ignore=spec_ignore)) == [
        "deploy/app.yaml",
        "deploy/sub/service.yaml",
    ]


def test_sourceignore_files_are_scoped_and_ordered() -> None:
    tree = {
        ".sourceignore": b"*.txt\n",
        "notes.txt": b"",
        "apps/.sourceignore": b"!notes.txt\n/local.yaml\n",
        "apps/notes.txt": b"",
        "apps/local.yaml": b"",
        "apps/sub/local.yaml": b"",
        "apps/sub/other.txt": b"",
        "logo.png": b"",
    }
    assert sorted(select_files(tree, spec_ignore=None)) == [
        ".sourceignore",  # the ignore files themselves stay
        "apps/.sourceignore",
        "apps/notes.txt",  # re-included by the deeper file
        "apps/sub/local.yaml",  # `/local.yaml` is anchored to apps/
        "logo.png",  # a .sourceignore replaces the default excludes too
    ]


def test_deeper_sourceignore_wins_over_its_parent_and_spec_ignore_wins_over_both() -> None:
    tree = {
        "a/.sourceignore": b"*.yaml\n",
        "a/b/.sourceignore": b"!*.yaml\n",
        "a.b/.sourceignore": b"*.yaml\n",
        "a/x.yaml": b"",
        "a/b/y.yaml": b"",
        "a.b/z.yaml": b"",
    }
    assert sorted(p for p in select_files(tree, spec_ignore=None) if p.endswith(".yaml")) == [
        "a/b/y.yaml"
    ]
    selected = select_files(tree, spec_ignore="a/b/y.yaml")
    assert "a/b/y.yaml" not in selected


def test_sourceignore_inside_git_dir_is_not_read() -> None:
    tree = {".git/.sourceignore": b"*.yaml\n", "app.yaml": b""}
    assert list(select_files(tree, spec_ignore=None)) == ["app.yaml"]


def test_result_is_sorted_by_path() -> None:
    tree = {"b.yaml": b"", "a/z.yaml": b"", "a.yaml": b""}
    assert list(select_files(tree, spec_ignore=None)) == ["a.yaml", "a/z.yaml", "b.yaml"]
