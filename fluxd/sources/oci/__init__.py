"""OCI artifacts: what an OCIRepository pulls and ``fluxd push artifact`` publishes.

- :mod:`~fluxd.sources.oci.reference`: ``oci://`` URLs, image names, refs and semver tag
  selection;
- :mod:`~fluxd.sources.oci.credentials`: dockerconfigjson and TLS Secrets;
- :mod:`~fluxd.sources.oci.client`: the distribution API over aiohttp, with the basic and
  bearer-token auth handshake and size-bounded, digest-checked reads;
- :mod:`~fluxd.sources.oci.pull`: a ref resolved to a manifest digest, then its layer;
- :mod:`~fluxd.sources.oci.cosign`: an artifact's cosign signatures checked with public keys;
- :mod:`~fluxd.sources.oci.layers`: layer selection and safe in-memory tar extraction;
- :mod:`~fluxd.sources.oci.publish`: Flux's artifact format and pushing files in it.
"""

from fluxd.sources.oci.client import Manifest, RegistryClient
from fluxd.sources.oci.cosign import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    VERIFICATION_ERROR,
    PublicKey,
    public_keys,
    signature_tag,
    verify_signatures,
)
from fluxd.sources.oci.credentials import (
    RegistryAuth,
    docker_config_auth,
    spec_proxy,
    spec_registry_auth,
    tls_context,
)
from fluxd.sources.oci.errors import (
    AUTHENTICATION_FAILED,
    LAYER_OPERATION_FAILED,
    PULL_FAILED,
    READ_OPERATION_FAILED,
    URL_INVALID,
    RegistryError,
)
from fluxd.sources.oci.layers import Extracted, Layer, extract_tarball, select_layer
from fluxd.sources.oci.publish import (
    CONFIG_MEDIA_TYPE,
    CONTENT_MEDIA_TYPE,
    CREATED_ANNOTATION,
    REVISION_ANNOTATION,
    SOURCE_ANNOTATION,
    Pushed,
    PushLayer,
    directory_files,
    push_artifact,
    push_files,
)
from fluxd.sources.oci.pull import Pulled, Resolved, pull, resolve
from fluxd.sources.oci.reference import (
    DEFAULT_TAG,
    HELM_CHART_LAYER,
    Reference,
    Repository,
    parse_image,
    parse_reference,
    parse_url,
    select_semver_tag,
)

__all__ = [
    "AUTHENTICATION_FAILED",
    "CONFIG_MEDIA_TYPE",
    "CONTENT_MEDIA_TYPE",
    "CREATED_ANNOTATION",
    "DEFAULT_TAG",
    "HELM_CHART_LAYER",
    "LAYER_OPERATION_FAILED",
    "PULL_FAILED",
    "READ_OPERATION_FAILED",
    "REVISION_ANNOTATION",
    "SIGNATURE_ANNOTATION",
    "SIMPLE_SIGNING_MEDIA_TYPE",
    "SOURCE_ANNOTATION",
    "URL_INVALID",
    "VERIFICATION_ERROR",
    "Extracted",
    "Layer",
    "Manifest",
    "PublicKey",
    "Pulled",
    "PushLayer",
    "Pushed",
    "Reference",
    "RegistryAuth",
    "RegistryClient",
    "RegistryError",
    "Repository",
    "Resolved",
    "directory_files",
    "docker_config_auth",
    "extract_tarball",
    "parse_image",
    "parse_reference",
    "parse_url",
    "public_keys",
    "pull",
    "push_artifact",
    "push_files",
    "resolve",
    "select_layer",
    "select_semver_tag",
    "signature_tag",
    "spec_proxy",
    "spec_registry_auth",
    "tls_context",
    "verify_signatures",
]
