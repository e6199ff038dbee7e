"""AWS Signature V4 against AWS's published examples: the S3 developer guide's signed
GET object, list objects and bucket lifecycle requests, and the ``get-vanilla`` case of
the SigV4 test suite (service ``service``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fluxd.sources.bucket.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    canonical_query,
    canonical_request,
    encode_path,
    sign,
)

S3_EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
S3_TIME = datetime(2013, 5, 24, tzinfo=UTC)


def signature(headers: dict[str, str]) -> str:
    return headers["Authorization"].rpartition("Signature=")[2]


@pytest.mark.parametrize(
    ("path", "query", "extra", "expected"),
    [
        (
            "/test.txt",
            [],
            {"Range": "bytes=0-9"},
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
        (
            "/",
            [("max-keys", "2"), ("prefix", "J")],
            {},
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
        (
            "/",
            [("lifecycle", "")],
            {},
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
    ],
    ids=["get-object", "list-objects", "get-bucket-lifecycle"],
)
def test_s3_developer_guide_examples(
    path: str, query: list[tuple[str, str]], extra: dict[str, str], expected: str
) -> None:
    headers = sign(
        method="GET",
        host="examplebucket.s3.amazonaws.com",
        path=path,
        query=query,
        headers=extra,
        credentials=S3_EXAMPLE,
        region="us-east-1",
        now=S3_TIME,
    )
    assert signature(headers) == expected
    assert headers["X-Amz-Date"] == "20130524T000000Z"
    assert headers["X-Amz-Content-Sha256"] == EMPTY_SHA256
    assert headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
    )


def test_sigv4_test_suite_get_vanilla() -> None:
    headers = sign(
        method="GET",
        host="example.amazonaws.com",
        path="/",
        credentials=Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region="us-east-1",
        service="service",
        now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    assert "X-Amz-Content-Sha256" not in headers, "only S3 signs the payload hash header"


def test_session_token_is_sent_and_signed() -> None:
    headers = sign(
        method="GET",
        host="s3.amazonaws.com",
        path="/b",
        credentials=Credentials("AK", "SK", "token"),
        region="eu-west-1",
        now=S3_TIME,
    )
    assert headers["X-Amz-Security-Token"] == "token"
    assert "x-amz-security-token" in headers["Authorization"]


def test_keys_are_encoded_once_slashes_kept() -> None:
    assert encode_path("/bucket/a b/c+d/ü~.yaml") == "/bucket/a%20b/c%2Bd/%C3%BC~.yaml"
    assert canonical_query([("prefix", "a/b c"), ("list-type", "2")]) == (
        "list-type=2&prefix=a%2Fb%20c"
    )


def test_canonical_headers_are_trimmed_lowercased_and_sorted() -> None:
    request, signed = canonical_request(
        method="GET",
        path="/",
        query=[],
        headers={"X-Amz-Date": "d", "Host": "h", "My-Header": "  a   b  "},
        payload_hash="p",
    )
    assert signed == "host;my-header;x-amz-date"
    assert (
        request == "GET\n/\n\nhost:h\nmy-header:a b\nx-amz-date:d\n\nhost;my-header;x-amz-date\np"
    )


def test_credentials_hide_the_secret() -> None:
    assert "SK" not in repr(Credentials("AK", "SK"))
