"""The nouns of the ``fluxd`` command line: which word names which Flux kind.

``flux`` addresses objects as ``source git``, ``kustomization`` (``ks``),
``image policy``, ``alert-provider``, ...; every command that takes such a noun reads
this one table, so ``get``, ``reconcile``, ``suspend``, ``resume`` and ``delete`` agree
on the words, the kind behind each and the name Flux uses for it in messages
(``source git``, ``image update automation``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NOUNS", "SOURCE_NOUNS", "Noun"]


@dataclass(frozen=True, slots=True)
class Noun:
    """One object noun: the words that name it on the command line, and its kind."""

    #: The words in command-line order: ``("source", "git")``, ``("kustomization",)``.
    words: tuple[str, ...]
    kind: str
    #: What Flux calls the kind in its messages: ``source git``, ``alert provider``.
    human: str
    aliases: tuple[str, ...] = ()
    #: Whether ``reconcile`` takes it: Flux reconciles neither Alerts nor Providers.
    reconcilable: bool = True

    @property
    def word(self) -> str:
        """The last word: the subcommand that names this kind."""
        return self.words[-1]

    @property
    def group(self) -> str | None:
        """The word grouping it with its siblings (``source``, ``image``), if any."""
        return self.words[0] if len(self.words) > 1 else None


NOUNS: tuple[Noun, ...] = (
    Noun(("source", "git"), "GitRepository", "source git"),
    Noun(("source", "oci"), "OCIRepository", "source oci"),
    Noun(("source", "helm"), "HelmRepository", "source helm"),
    Noun(("source", "chart"), "HelmChart", "source chart"),
    Noun(("source", "bucket"), "Bucket", "source bucket"),
    Noun(("kustomization",), "Kustomization", "kustomization", aliases=("ks",)),
    Noun(("helmrelease",), "HelmRelease", "helmrelease", aliases=("hr",)),
    Noun(("image", "repository"), "ImageRepository", "image repository"),
    Noun(("image", "policy"), "ImagePolicy", "image policy"),
    Noun(("image", "update"), "ImageUpdateAutomation", "image update automation"),
    Noun(("alert",), "Alert", "alert", reconcilable=False),
    Noun(("alert-provider",), "Provider", "alert provider", reconcilable=False),
    Noun(("receiver",), "Receiver", "receiver"),
)

SOURCE_NOUNS: tuple[Noun, ...] = tuple(noun for noun in NOUNS if noun.group == "source")
