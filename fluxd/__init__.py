"""fluxd: the Flux CD controllers as one asyncio process.

A Flux user deletes the six controller Deployments, installs fluxd, and every existing
``GitRepository``, ``Kustomization``, ``HelmRelease``... keeps reconciling. The package is
laid out along the data flow: ``kube`` (watch the API) -> ``scheduler`` (one queue) ->
``reconcilers`` (one module per kind) -> ``sources`` (fetch into the shared artifact cache)
-> status, events and metrics.
"""

__version__ = "0.1.0"
