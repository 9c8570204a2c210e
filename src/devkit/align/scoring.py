"""Is a candidate lock good for the whole store? Pairs and bytes it adds and frees.

The store holds one cache entry per distinct ``(index, name, version)`` that any registered lock
uses. A candidate lock for one project *adds* the keys no project uses yet (their full size) and
*frees* a share of each key it stops using: ``size / users`` (all of it when the project was the
only user; otherwise its part of what aligning every user would free). Sizes are those of the
wheel this machine would install (:func:`devkit.align.lockfile.wheel_size`).

A candidate that adds nothing is a plain alignment step and always acceptable; one that adds
pairs (a released parent's new version, a new dependency) must free more bytes than it adds.
Every candidate of a pass is scored against the store as it was when the pass began (the engine
builds a new :class:`StoreState` per pass), so the result does not depend on which concurrent
project finishes first. Thread-safe.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Iterable

from devkit.align.lockfile import Key, Lock, version_key
from devkit.align.planner import DowngradePolicy, downgrade_allowed, moved_down


@dataclasses.dataclass(frozen=True)
class Score:
    """What one candidate lock does to the store; bytes are wheel sizes from the locks."""

    added_pairs: int
    removed_pairs: int
    added_bytes: int
    freed_bytes: int  # the project's fair share of what its leaving keys free

    @property
    def gain(self) -> int:
        """Bytes freed minus bytes added (positive: the store gets lighter)."""
        return self.freed_bytes - self.added_bytes

    @property
    def acceptable(self) -> bool:
        """Adds nothing, or frees more bytes than it adds (more pairs on a tie of unknown sizes)."""
        if self.added_pairs == 0:
            return True
        if self.gain != 0:
            return self.gain > 0
        return self.removed_pairs > self.added_pairs

    def explain(self) -> str:
        """One line: "adds 2 pairs (1.2 MiB), frees 0.3 MiB"."""
        return (f"the lock uv found adds {self.added_pairs} new (index, name, version) pair(s) "
                f"({_mib(self.added_bytes)}) and frees {_mib(self.freed_bytes)}")


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


class StoreState:
    """How many projects use each key, and each key's size, at the start of a pass."""

    def __init__(self, locks: Iterable[Lock]) -> None:
        """Count the keys of ``locks`` (one per project)."""
        self._users: collections.Counter[Key] = collections.Counter()
        self._sizes: dict[Key, int] = {}
        self._guard = threading.Lock()
        for lock in locks:
            self._add(lock)

    def _add(self, lock: Lock) -> None:
        self._users.update(lock.keys())
        for key, size in lock.sizes().items():
            self._sizes[key] = max(self._sizes.get(key, 0), size)

    def sizes_view(self) -> dict[Key, int]:
        """A copy of every known key's size in bytes."""
        with self._guard:
            return dict(self._sizes)

    def newest_in_use(self, index: str, name: str) -> str | None:
        """The newest version of ``(index, name)`` some lock uses, or None."""
        with self._guard:
            versions = [k[2] for k, n in self._users.items()
                        if n > 0 and k[0] == index and k[1] == name]
        return max(versions, key=version_key) if versions else None

    def in_use(self, index: str, name: str) -> list[str]:
        """Every version of ``(index, name)`` some lock uses, oldest first."""
        with self._guard:
            versions = [k[2] for k, n in self._users.items()
                        if n > 0 and k[0] == index and k[1] == name]
        return sorted(versions, key=version_key)

    def users(self, key: Key) -> int:
        """How many locks use ``key``."""
        with self._guard:
            return self._users[key]

    def size(self, key: Key) -> int:
        """Bytes of ``key``'s wheel, 0 when no lock records it."""
        with self._guard:
            return self._sizes.get(key, 0)

    def score(self, old: Lock, new: Lock) -> Score:
        """Score replacing ``old`` (a project's current lock) by ``new`` (a candidate)."""
        with self._guard:
            new_sizes = new.sizes()
            old_keys, new_keys = old.keys(), new.keys()
            added = [k for k in new_keys - old_keys if self._users[k] == 0]
            leaving = old_keys - new_keys
            added_bytes = sum(new_sizes.get(k) or self._sizes.get(k, 0) for k in added)
            freed = sum(self._sizes.get(k, 0) // max(self._users[k], 1) for k in leaving)
            removed = sum(1 for k in leaving if self._users[k] <= 1)
            return Score(len(added), removed, added_bytes, freed)

def downgrades(old: Lock, new: Lock) -> list[tuple[str, str, str]]:
    """``(name, old version, new version)`` for every package that moved down, by name.

    A package locked at several versions (a fork) counts by the ends of its set of versions
    (:func:`devkit.align.planner.moved_down`): one name may then give two entries.
    """
    return [(name, b, a) for name in sorted(old.names() & new.names())
            for b, a in moved_down(old.versions(name), new.versions(name))]


def forbidden_downgrades(old: Lock, new: Lock, policy: DowngradePolicy
                         ) -> list[tuple[str, str, str]]:
    """The :func:`downgrades` that ``policy`` does not allow."""
    return [d for d in downgrades(old, new) if not downgrade_allowed(d[1], d[2], policy)]
