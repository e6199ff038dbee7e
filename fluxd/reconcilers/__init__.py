"""One module per Flux kind, each a short list of steps, and the driver they share
(:mod:`fluxd.reconcilers.driver`)."""
