"""Image policy markers rewrite only the marked values: every other byte stays as it was."""

from __future__ import annotations

import pytest

from fluxd.image.setters import (
    Change,
    ImageRef,
    ObjectId,
    SetterError,
    UnknownMarker,
    apply_setters,
    candidate,
)

APP = ImageRef(name="ghcr.io/org/app", tag="v1.2.0")
POLICIES = {"flux-system:app": APP}
DIGEST = "sha256:" + "ab" * 32


def updated(path: str, content: bytes, policies: dict[str, ImageRef] = POLICIES) -> bytes:
    """The single file's new bytes, asserting it was the only one changed."""
    result = apply_setters([(path, content)], policies)
    assert [update.path for update in result.files] == [path]
    return result.files[0].content


def test_deployment_changes_only_the_image_bytes() -> None:
    deployment = (
        b"# The app, deployed by Flux.\n"
        b"apiVersion: apps/v1\n"
        b"kind: Deployment\n"
        b"metadata:\n"
        b"   name: 'app'   # quoted on purpose\n"
        b'   namespace: "apps"\n'
        b"spec:\n"
        b"   replicas: 2\n"
        b"   template:\n"
        b"      spec:\n"
        b"         containers:\n"
        b"         -   name: app\n"
        b'             image: "ghcr.io/org/app:v1.0.0"   # {"$imagepolicy": "flux-system:app"}\n'
        b"             ports: [{containerPort: 8080}]   \n"
        b"         # trailing comment\n"
    )
    expected = deployment.replace(b'"ghcr.io/org/app:v1.0.0"', b'"ghcr.io/org/app:v1.2.0"')

    result = apply_setters([("apps/deploy.yaml", deployment)], POLICIES)

    assert result.unknown == ()
    [update] = result.files
    assert update.content == expected
    assert update.changes == (
        (
            ObjectId("apps/v1", "Deployment", "app", "apps"),
            Change("ghcr.io/org/app:v1.0.0", "ghcr.io/org/app:v1.2.0", "flux-system:app"),
        ),
    )


def test_helmrelease_values_take_tag_and_name_markers() -> None:
    release = (
        b"apiVersion: helm.toolkit.fluxcd.io/v2\n"
        b"kind: HelmRelease\n"
        b"metadata:\n"
        b"  name: app\n"
        b"spec:\n"
        b"  values:\n"
        b"    image:\n"
        b'      repository: docker.io/org/app # {"$imagepolicy": "flux-system:app:name"}\n'
        b'      tag: \'v1.0.0\' # {"$imagepolicy": "flux-system:app:tag"}\n'
        b"      pullPolicy: IfNotPresent\n"
    )
    expected = release.replace(b"docker.io/org/app", b"ghcr.io/org/app").replace(
        b"'v1.0.0'", b"'v1.2.0'"
    )

    result = apply_setters([("release.yaml", release)], POLICIES)

    [update] = result.files
    assert update.content == expected
    release_id = ObjectId("helm.toolkit.fluxcd.io/v2", "HelmRelease", "app", "")
    assert update.changes == (
        (release_id, Change("docker.io/org/app", "ghcr.io/org/app", "flux-system:app:name")),
        (release_id, Change("v1.0.0", "v1.2.0", "flux-system:app:tag")),
    )


def test_kustomization_images_take_name_tag_and_digest_markers() -> None:
    kustomization = (
        b"apiVersion: kustomize.config.k8s.io/v1beta1\n"
        b"kind: Kustomization\n"
        b"resources:\n"
        b"- deploy.yaml\n"
        b"images:\n"
        b"- name: app\n"
        b'  newName: docker.io/org/app # {"$imagepolicy": "flux-system:app:name"}\n'
        b'  newTag: v1.0.0 # {"$imagepolicy": "flux-system:app:tag"}\n'
        b"- name: pinned\n"
        b'  digest: sha256:0000 # {"$imagepolicy": "flux-system:app:digest"}\n'
    )
    expected = (
        kustomization.replace(b"docker.io/org/app", b"ghcr.io/org/app")
        .replace(b"v1.0.0", b"v1.2.0")
        .replace(b"sha256:0000", DIGEST.encode())
    )
    policies = {"flux-system:app": ImageRef(APP.name, APP.tag, DIGEST)}

    assert updated("kustomization.yaml", kustomization, policies) == expected


def test_kustomization_file_without_extension_is_a_candidate() -> None:
    kustomization = (
        b'images:\n- name: app\n  newTag: v1 # {"$imagepolicy": "flux-system:app:tag"}\n'
    )

    assert updated("overlay/Kustomization", kustomization) == kustomization.replace(
        b"v1 #", b"v1.2.0 #"
    )


def test_marker_on_a_list_item() -> None:
    listing = (
        b"images:\n"
        b"  - ghcr.io/org/other:v3\n"
        b'  - ghcr.io/org/app:v1.0.0 # {"$imagepolicy": "flux-system:app"}\n'
    )

    assert updated("list.yml", listing) == listing.replace(b"app:v1.0.0", b"app:v1.2.0")


def test_multi_document_file_names_each_changed_object() -> None:
    documents = (
        b"---\n"
        b"apiVersion: v1\n"
        b"kind: ConfigMap\n"
        b"metadata: {name: settings, namespace: apps}\n"
        b"data:\n"
        b'  image: ghcr.io/org/app:v1.0.0 # {"$imagepolicy": "flux-system:app"}\n'
        b"---\n"
        b"# unrelated\n"
        b"apiVersion: batch/v1\n"
        b"kind: Job\n"
        b"metadata:\n"
        b"  name: migrate\n"
        b"spec:\n"
        b"  template:\n"
        b"    spec:\n"
        b"      containers:\n"
        b"      - name: migrate\n"
        b'        image: ghcr.io/org/app:v1.1.0 # {"$imagepolicy": "flux-system:app"}\n'
        b"...\n"
    )
    expected = documents.replace(b"app:v1.0.0", b"app:v1.2.0").replace(b"app:v1.1.0", b"app:v1.2.0")

    [update] = apply_setters([("all.yaml", documents)], POLICIES).files

    assert update.content == expected
    assert [(object_id, change.old_value) for object_id, change in update.changes] == [
        (ObjectId("v1", "ConfigMap", "settings", "apps"), "ghcr.io/org/app:v1.0.0"),
        (ObjectId("batch/v1", "Job", "migrate", ""), "ghcr.io/org/app:v1.1.0"),
    ]


def test_crlf_line_endings_are_kept() -> None:
    windows = (
        b"kind: Deployment\r\n"
        b"spec:\r\n"
        b'  image: ghcr.io/org/app:v1.0.0 # {"$imagepolicy": "flux-system:app"}\r\n'
        b"  replicas: 1\r\n"
    )

    assert updated("deploy.yaml", windows) == windows.replace(b"app:v1.0.0", b"app:v1.2.0")


@pytest.mark.parametrize(
    ("tag", "written"),
    [
        ("1.10", b'"1.10"'),
        ("10", b'"10"'),
        ("true", b'"true"'),
        ("yes", b'"yes"'),
        ("null", b'"null"'),
        ("0o17", b'"0o17"'),
        ("*latest", b'"*latest"'),
        ("@v1", b'"@v1"'),
        ("v1: x", b'"v1: x"'),
        ("", b'""'),
        ("v1.10", b"v1.10"),
        ("1.10-rc.1", b"1.10-rc.1"),
    ],
)
def test_plain_value_is_quoted_when_it_would_not_read_back_as_a_string(
    tag: str, written: bytes
) -> None:
    values = b'tag: v1.0.0 # {"$imagepolicy": "flux-system:app:tag"}\n'
    policies = {"flux-system:app": ImageRef(APP.name, tag)}

    assert updated("values.yaml", values, policies) == values.replace(b"v1.0.0", written)


@pytest.mark.parametrize(
    ("original", "tag", "written"),
    [
        (b"'v1.0.0'", "it's", b"'it''s'"),
        (b'"v1.0.0"', 'a"b\\c', b'"a\\"b\\\\c"'),
        (b"'v1.0.0'", "1.10", b"'1.10'"),
    ],
)
def test_quoted_value_keeps_its_quotes_with_escaping(
    original: bytes, tag: str, written: bytes
) -> None:
    values = b"tag: " + original + b' # {"$imagepolicy": "flux-system:app:tag"}\n'
    policies = {"flux-system:app": ImageRef(APP.name, tag)}

    assert updated("values.yaml", values, policies) == values.replace(original, written)


def test_anchor_and_tag_before_a_value_are_kept() -> None:
    values = b'tag: &tag !!str v1.0.0 # {"$imagepolicy": "flux-system:app:tag"}\nother: *tag\n'

    assert updated("values.yaml", values) == values.replace(b"v1.0.0", b"v1.2.0")


def test_digest_makes_the_image_marker_a_pinned_reference() -> None:
    deployment = b'image: ghcr.io/org/app:v1.0.0 # {"$imagepolicy": "flux-system:app"}\n'
    policies = {"flux-system:app": ImageRef(APP.name, APP.tag, DIGEST)}

    assert updated("deploy.yaml", deployment, policies) == (
        b"image: ghcr.io/org/app:v1.2.0@" + DIGEST.encode() + b' # {"$imagepolicy": '
        b'"flux-system:app"}\n'
    )


def test_file_already_current_is_not_returned() -> None:
    current = b'image: ghcr.io/org/app:v1.2.0 # {"$imagepolicy": "flux-system:app"}\n'

    assert apply_setters([("deploy.yaml", current)], POLICIES).files == ()


def test_unknown_policy_is_reported_and_its_file_left_alone() -> None:
    other = b'a: 1\nimage: ghcr.io/org/db:v9 # {"$imagepolicy": "flux-system:db"}\n'

    result = apply_setters([("db/deploy.yaml", other)], POLICIES)

    assert result.files == ()
    assert result.unknown == (UnknownMarker("db/deploy.yaml", 2, "flux-system:db"),)


def test_unknown_marker_does_not_stop_known_ones_in_the_same_file() -> None:
    mixed = (
        b'db: ghcr.io/org/db:v9 # {"$imagepolicy": "flux-system:db"}\n'
        b'app: ghcr.io/org/app:v1 # {"$imagepolicy": "flux-system:app"}\n'
        b'cache:\n  tag: v2 # {"$imagepolicy": "flux-system:cache:tag"}\n'
    )

    result = apply_setters([("mixed.yaml", mixed)], POLICIES)

    assert [update.content for update in result.files] == [
        mixed.replace(b"app:v1 ", b"app:v1.2.0 ")
    ]
    assert result.unknown == (
        UnknownMarker("mixed.yaml", 1, "flux-system:db"),
        UnknownMarker("mixed.yaml", 4, "flux-system:cache:tag"),
    )


def test_invalid_yaml_with_the_token_names_the_file_and_line() -> None:
    broken = b'image: ghcr.io/org/app:v1 # {"$imagepolicy": "flux-system:app"}\n  bad: [\n'

    with pytest.raises(SetterError, match=r"apps/broken\.yaml: invalid YAML at line \d+"):
        apply_setters([("apps/broken.yaml", broken)], POLICIES)


def test_marked_file_that_is_not_utf8_names_the_file() -> None:
    latin1 = b'# caf\xe9\nimage: x # {"$imagepolicy": "flux-system:app"}\n'

    with pytest.raises(SetterError, match=r"latin1\.yaml: not UTF-8"):
        apply_setters([("latin1.yaml", latin1)], POLICIES)


def test_utf8_bom_and_non_ascii_comments_are_kept() -> None:
    marked = (
        "\ufeff# Ünïcode façade\n"
        'image: ghcr.io/org/app:v1 # {"$imagepolicy": "flux-system:app"} \n'
        "note: ünchanged\n"
    ).encode()

    assert updated("deploy.yaml", marked) == marked.replace(b"app:v1 ", b"app:v1.2.0 ")


def test_file_without_the_token_is_not_parsed() -> None:
    unmarked_broken = b"image: [unclosed\n  : :\n"
    foreign = b'image: x # {"$imagepolicy": "flux-system:app"}\n'

    result = apply_setters([("a.yaml", unmarked_broken), ("README.md", foreign)], POLICIES)

    assert result.files == ()
    assert result.unknown == ()


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b'[ghcr.io/org/app:v1] # {"$imagepolicy": "flux-system:app"}\n', "a flow collection"),
        (b'| # {"$imagepolicy": "flux-system:app"}\n  ghcr.io/org/app:v1\n', "a block scalar"),
        (b'# {"$imagepolicy": "flux-system:app"}\n', "an empty value"),
        (b'"ghcr.io/org/app:\n  v1" # {"$imagepolicy": "flux-system:app"}\n', "a multi-line"),
    ],
)
def test_marker_on_a_value_that_cannot_be_set_in_place_names_file_and_line(
    value: bytes, kind: str
) -> None:
    content = b"kind: Deployment\nimage: " + value

    with pytest.raises(SetterError, match=rf"deploy\.yaml:2: .*'flux-system:app' is on {kind}"):
        apply_setters([("deploy.yaml", content)], POLICIES)


def test_unsettable_marker_naming_an_unknown_policy_is_only_reported() -> None:
    content = b'script: | # {"$imagepolicy": "flux-system:db"}\n  echo hi\n'

    result = apply_setters([("job.yaml", content)], POLICIES)

    assert result.files == ()
    assert result.unknown == (UnknownMarker("job.yaml", 1, "flux-system:db"),)


def test_marker_text_inside_a_string_is_not_a_marker() -> None:
    content = b'note: \'see # {"$imagepolicy": "flux-system:app"}\'\n'

    result = apply_setters([("notes.yaml", content)], POLICIES)

    assert result.files == ()
    assert result.unknown == ()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("deploy.yaml", True),
        ("a/b/values.yml", True),
        ("overlay/Kustomization", True),
        ("kustomization", False),
        ("notes.yaml.bak", False),
        ("README.md", False),
    ],
)
def test_candidate_names(path: str, expected: bool) -> None:
    assert candidate(path) is expected
