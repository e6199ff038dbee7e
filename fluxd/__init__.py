"""fluxd: the Flux CD controllers as one asyncio process.

A Flux user deletes the six controller Deployments, installs fluxd, and every existing
``GitRepository``, ``Kustomization``, ``HelmRelease``... keeps reconciling. The package is
laid out along the data flow: ``kube`` (watch the API) -> ``runtime`` (one scheduler,
conditions, status) -> ``reconcilers`` (the driver and one module per kind) -> ``sources``
(fetch into the shared artifact cache), ``build`` and ``kustomize`` (manifests), ``apply``
(server-side apply) -> status, events and metrics; ``daemon`` wires it into one process,
``cli`` and ``dev`` sit on top. Imports run one way, top to bottom (``lint-imports``).
"""

__version__ = "0.1.0"
