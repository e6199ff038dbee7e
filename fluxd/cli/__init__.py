"""The ``fluxd`` command line: ``run`` (the daemon) and Flux's verbs (see :mod:`.main`)."""

from fluxd.cli.main import main

__all__ = ["main"]
