"""Git sources: fetch a ref's tree into memory, over every transport Flux supports.

- :mod:`~fluxd.sources.git.remote`: ref selection (Flux's precedence, as the API's
  ``GitRepositoryRef`` defines it), ``ls-remote`` and shallow fetches with dulwich,
  revision strings;
- :mod:`~fluxd.sources.git.transport`: http(s), ssh and git:// clients with credentials;
- :mod:`~fluxd.sources.git.credentials`: those credentials from a Secret's data;
- :mod:`~fluxd.sources.git.includes`: an artifact's files from the commit, its
  includes and the ignore rules;
- :mod:`~fluxd.sources.git.verify`: PGP and SSH signatures of commits and tags.
"""

from fluxd.sources.git.credentials import auth_from_secret
from fluxd.sources.git.includes import artifact_files, include_paths
from fluxd.sources.git.remote import Commit, fetch, format_revision, resolve
from fluxd.sources.git.transport import GitAuth, GitError
from fluxd.sources.git.verify import VerificationError, verify_signature

__all__ = [
    "Commit",
    "GitAuth",
    "GitError",
    "VerificationError",
    "artifact_files",
    "auth_from_secret",
    "fetch",
    "format_revision",
    "include_paths",
    "resolve",
    "verify_signature",
]
