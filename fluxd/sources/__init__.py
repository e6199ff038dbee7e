"""Where artifacts come from, and where they are kept.

- :mod:`~fluxd.sources.artifact`: an artifact (files + Flux's tarball, digest, revision);
- :mod:`~fluxd.sources.cache`: the in-memory artifact cache every reconciler shares, and
  the subscriptions that tell consumers of a new artifact;
- :mod:`~fluxd.sources.ignore` and :mod:`~fluxd.sources.gitignore`: Flux's ignore rules;
- :mod:`~fluxd.sources.proxy`: the ``spec.proxySecretRef`` proxy every fetcher uses;
- one folder per fetcher: :mod:`~fluxd.sources.git` (fetch, transport, signatures).
"""
