"""How often to retry a message the mail server did not take (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a transiently failed message again, and when to give up on it.

    The defaults follow RFC 5321 §4.5.4.1 (retry after at least 30 minutes, give up after 4-5
    days) and Postfix (minimal_backoff_time 300 s doubling to maximal_backoff_time 4000 s,
    maximal_queue_lifetime 5 d), rounded to 15 minutes doubling to 4 hours.
    """

    first: timedelta = timedelta(minutes=15)
    cap: timedelta = timedelta(hours=4)
    give_up: timedelta = timedelta(days=5)

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the `attempts`-th failed attempt: 15 min, 30 min, 1 h, 2 h, 4 h, 4 h, …"""
        wait = self.first
        for _ in range(attempts - 1):  # doubling stops at the cap: no overflow however many
            if wait >= self.cap:
                break
            wait *= 2
        return min(wait, self.cap)
