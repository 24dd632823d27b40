"""The in-memory index for the hot path: one sorted int64 per registered number.

Each entry packs ``digits << 8 | mask`` (see :mod:`legato.dnd.parse`), so the whole
registry is one numpy array at 8 bytes a number (250M numbers: 2 GB) and a lookup is a
binary search (``numpy.searchsorted``, ~28 steps for 250M). A Python ``set`` of ints
would need about 60 bytes a number plus a dict for the categories.
"""

from __future__ import annotations

import numpy as np

from legato.core.policy.dnd import TransactionalPolicy, blocks, check_number
from legato.dnd.parse import MASK, MASK_BITS, Keys
from legato.dnd.registry import DndRegistry


class DndIndex:
    """An immutable snapshot of one registry version, answering in microseconds."""

    __slots__ = ("generation", "keys", "transactional_policy", "version")

    def __init__(
        self,
        keys: Keys,
        version: int = 0,
        generation: int = 0,
        transactional_policy: TransactionalPolicy = TransactionalPolicy.ALLOW,
    ) -> None:
        """``keys``: sorted unique packed entries."""
        self.keys = keys
        self.version = version
        self.generation = generation
        self.transactional_policy = transactional_policy

    @classmethod
    def load(
        cls,
        registry: DndRegistry,
        transactional_policy: TransactionalPolicy = TransactionalPolicy.ALLOW,
    ) -> DndIndex:
        """Build the index from the registry's current version."""
        keys, info = registry.read_current_keys()
        return cls(keys, info.version, info.generation, transactional_policy)

    def is_stale(self, registry: DndRegistry) -> bool:
        """True when the registry switched version or changed since this snapshot."""
        info = registry.current()
        return info is None or (info.version, info.generation) != (self.version, self.generation)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        """Memory held by the index's data."""
        return int(self.keys.nbytes)

    def mask(self, number: str) -> int | None:
        """Registration mask of ``number``, None when it is not registered."""
        digits = int(check_number(number)[1:])
        probe = digits << MASK_BITS
        keys = self.keys
        i = int(np.searchsorted(keys, probe))
        if i < len(keys):
            key = int(keys[i])
            if key >> MASK_BITS == digits:
                return key & MASK
        return None

    def with_policy(self, policy: TransactionalPolicy) -> DndIndex:
        """The same data for an account with another transactional policy."""
        return DndIndex(self.keys, self.version, self.generation, policy)

    def is_dnd(self, number: str, category: int | None = None, transactional: bool = False) -> bool:
        """See :class:`legato.core.policy.dnd.DndLookup`."""
        return blocks(self.mask(number), category, transactional, self.transactional_policy)
