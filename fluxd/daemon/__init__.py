"""The daemon: every reconciler, informer and listener wired into one process
(:mod:`~fluxd.daemon.manager`), and its HTTP surface (:mod:`~fluxd.daemon.http`)."""
