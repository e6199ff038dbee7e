"""What every reconcile runs on, whatever its kind: object keys, the scheduler, status
conditions and their patches, the reconcile error, metrics and logs.

It knows neither the Kubernetes client nor any Flux kind's spec: a reconciler's steps
raise :class:`~fluxd.runtime.errors.ReconcileError`, the driver in
:mod:`fluxd.reconcilers.driver` turns the outcome into conditions with these helpers.
"""
