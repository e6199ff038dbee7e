"""Exponential backoff, one rule for everything that retries.

The scheduler retries a failing object (Flux's 750 ms doubling up to 15 minutes), an
informer re-establishes a broken watch (0.5 s doubling up to 30 s, jittered so that many
informers do not reconnect in lockstep). Both ask the same question: how long to wait
before attempt ``n``. The caller counts the attempts and resets the count on success.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """``initial * factor**(attempt-1)`` capped at ``maximum``, each delay shortened by up to
    ``jitter`` (a fraction, 0 for none) times ``rand()``."""

    initial: float
    maximum: float
    factor: float = 2.0
    jitter: float = 0.0
    rand: Callable[[], float] = random.random

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1 after the first failure)."""
        exponent = min(max(attempt, 1) - 1, 64)
        base = min(self.initial * math.pow(self.factor, exponent), self.maximum)
        return base * (1.0 - self.jitter * self.rand()) if self.jitter else base
