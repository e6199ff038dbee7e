"""For developers and newcomers, never imported by the daemon: the real local control
plane tests run against (:mod:`~fluxd.dev.controlplane`) and the demo that ``fluxd run``
starts when there is no cluster (:mod:`~fluxd.dev.demo`)."""
