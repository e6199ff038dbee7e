"""The one door to the Helm v4 SDK (PyPI ``helm-python-sdk``): loaded late, as Flux's manager.

The SDK is Helm's own Go code behind a C ABI, so charts render and releases are stored
byte for byte as the ``helm`` CLI does. It costs ~60 MB of RSS once loaded, so nothing
imports it until a Helm action runs: :func:`sdk` loads it on first use.

Helm writes every object with the field manager ``filepath.Base(os.Args[0])`` of the
process, and Flux's helm-controller is called ``helm-controller``: objects fluxd releases
must carry that manager so ownership carries over a swap in either direction. The Go
runtime takes the process arguments when the library initialises, without copying them,
so :func:`sdk` writes ``helm-controller`` over the process's ``argv[0]`` (the memory
glibc's ``program_invocation_name`` points at, as setproctitle does) before the library
loads, for good: ``ps`` then shows the daemon as ``helm-controller`` followed by its
arguments. (Python parsed its arguments at start and never reads that memory again.)
The post-renderer plugin (:mod:`~fluxd.helm.plugins`) is written before the library
loads too.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from types import ModuleType

from fluxd.helm import plugins

__all__ = ["FIELD_MANAGER", "sdk"]

FIELD_MANAGER = "helm-controller"

_lock = threading.Lock()
_module: ModuleType | None = None


def sdk() -> ModuleType:
    """The ``helm_python`` module, loaded on first use with Flux's field manager."""
    global _module
    with _lock:
        if _module is None:
            _rename_process(FIELD_MANAGER)
            plugins.install()
            import helm_python

            _module = helm_python
        return _module


def _rename_process(name: str) -> None:
    """Overwrite the process's ``argv[0]`` in place, when the argument area has room."""
    encoded = name.encode() + b"\0"
    if len(Path("/proc/self/cmdline").read_bytes()) < len(encoded):
        return  # no room: Helm then names the manager after the interpreter
    pointer = ctypes.c_void_p.in_dll(ctypes.CDLL(None), "program_invocation_name")
    if pointer.value:
        ctypes.memmove(pointer.value, encoded, len(encoded))
