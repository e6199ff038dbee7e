"""The Helm plugin through which the SDK post-renders: fluxd's own post-renderer.

Helm v4 post-renders only by running a ``postrenderer/v1`` plugin, found by name in its
plugins directory. The SDK's Go runtime reads the environment the process started with
(the strings after ``argv``), never what Python sets later, so the directory cannot be
chosen from here: :func:`install` writes the plugin where Helm will look, computed as
Helm computes it from that same environment: the first entry of ``HELM_PLUGINS``, else
``$XDG_DATA_HOME/helm/plugins``, else ``~/.local/share/helm/plugins``. (The container
image sets ``HELM_PLUGINS`` under its writable ``/tmp``.)

The plugin runs this interpreter on ``fluxd.build.postrender`` (named here, not
imported: the renderer runs in the child process), so it is the same fluxd, whatever its
install; its name carries a digest of the interpreter's path, so two fluxd installs
sharing a home directory do not overwrite each other's plugin.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

__all__ = ["POST_RENDERER", "install"]

_RENDERER_MODULE = "fluxd.build.postrender"
POST_RENDERER = "fluxd-postrender-" + hashlib.sha256(sys.executable.encode()).hexdigest()[:12]


def plugins_directory() -> Path:
    """Where Helm looks for plugins, from the environment the process started with."""
    listed = os.environ.get("HELM_PLUGINS", "").split(os.pathsep)[0]
    if listed:
        return Path(listed)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "helm" / "plugins"


def install() -> Path:
    """Write the post-renderer plugin into Helm's plugins directory (when it changed)."""
    plugin = plugins_directory() / POST_RENDERER
    manifest = {
        "apiVersion": "v1",
        "type": "postrenderer/v1",
        "name": POST_RENDERER,
        "version": "1.0.0",
        "runtime": "subprocess",
        "runtimeConfig": {
            "platformCommand": [
                {"command": sys.executable, "args": ["-m", _RENDERER_MODULE]},
            ],
        },
    }
    # JSON is YAML: Helm's loader reads it as the plugin.yaml it is.
    text = json.dumps(manifest, indent=2) + "\n"
    path = plugin / "plugin.yaml"
    if not path.is_file() or path.read_text() != text:
        plugin.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return plugin
