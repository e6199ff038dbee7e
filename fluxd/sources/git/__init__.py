"""Git sources: fetch a ref's tree into memory, over every transport Flux supports.

- :mod:`~fluxd.sources.git.remote`: ref selection (Flux's precedence, as the API's
  ``GitRepositoryRef`` defines it), ``ls-remote`` and shallow fetches with dulwich,
  revision strings;
- :mod:`~fluxd.sources.git.push`: a commit made on a checkout in memory, pushed
  only if its branch has not moved (image automation);
- :mod:`~fluxd.sources.git.signing`: the PGP or SSH signature of such a commit;
- :mod:`~fluxd.sources.git.transport`: http(s), ssh and git:// clients with credentials;
- :mod:`~fluxd.sources.git.credentials`: those credentials from a GitRepository's
  Secrets and provider;
- :mod:`~fluxd.sources.git.proxy`: which git URLs the ``spec.proxySecretRef`` proxy carries;
- :mod:`~fluxd.sources.git.github_app`: GitHub App installation tokens;
- :mod:`~fluxd.sources.git.shared`: one fetch per commit for every GitRepository
  that wants it;
- :mod:`~fluxd.sources.git.submodules`: a commit's submodules fetched into its tree;
- :mod:`~fluxd.sources.git.sparse`: the ``spec.sparseCheckout`` paths kept of it;
- :mod:`~fluxd.sources.git.includes`: an artifact's files from the commit, its
  includes and the ignore rules;
- :mod:`~fluxd.sources.git.verify`: PGP and SSH signatures of commits and tags;
- :mod:`~fluxd.sources.git.wire`: the armor, packet and SSH string formats both share.
"""

from fluxd.sources.git.credentials import CredentialsError, auth_from_secret, repository_auth
from fluxd.sources.git.includes import artifact_files, include_paths
from fluxd.sources.git.push import Author, PushConflict, Refspec, commit_and_push, parse_refspec
from fluxd.sources.git.remote import Checkout, Commit, checkout, fetch, format_revision, resolve
from fluxd.sources.git.shared import SharedFetches
from fluxd.sources.git.signing import SigningError, commit_signer
from fluxd.sources.git.sparse import InvalidSparsePath, SparseCheckout
from fluxd.sources.git.transport import GitAuth, GitError
from fluxd.sources.git.verify import VerificationError, verify_signature

__all__ = [
    "Author",
    "Checkout",
    "Commit",
    "CredentialsError",
    "GitAuth",
    "GitError",
    "InvalidSparsePath",
    "PushConflict",
    "Refspec",
    "SharedFetches",
    "SigningError",
    "SparseCheckout",
    "VerificationError",
    "artifact_files",
    "auth_from_secret",
    "checkout",
    "commit_and_push",
    "commit_signer",
    "fetch",
    "format_revision",
    "include_paths",
    "parse_refspec",
    "repository_auth",
    "resolve",
    "verify_signature",
]
