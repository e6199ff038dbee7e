"""A Kustomization's build: from a source artifact and Flux's fields to the objects to apply.

The kustomize engine (:mod:`fluxd.kustomize`) knows kustomize, not Flux. This package
knows Flux's fields: :mod:`~fluxd.build.overlay` turns them into a kustomize overlay,
:mod:`~fluxd.build.sops` decrypts, :mod:`~fluxd.build.postbuild` substitutes variables,
:mod:`~fluxd.build.labels` names the owner, and :mod:`~fluxd.build.kustomization` runs
the steps in Flux's order for the reconciler and the CLI alike.
"""
