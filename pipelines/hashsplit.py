"""A stable split of entities by a hash: the same entities on every day, in any order or chunk."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np


def below(entity_ids: Iterable[Any], key: str, fraction: float) -> np.ndarray:
    """True for the entities whose 64-bit hash of (``key``, entity id as text), read as a number in
    [0, 1), is below ``fraction``. Another key draws other entities; a larger fraction keeps a smaller one's."""
    import pandas as pd

    prefix = f"{key}\x1f".encode()
    # Each distinct id is hashed once (a training window holds each entity once a day).
    ids = entity_ids if isinstance(entity_ids, pd.Series | pd.Index | np.ndarray) else list(entity_ids)
    codes, uniques = pd.factorize(ids, use_na_sentinel=False)
    values = [
        int.from_bytes(hashlib.blake2b(prefix + str(entity).encode(), digest_size=8).digest(), "big")
        for entity in uniques
    ]
    keep = np.asarray(values, dtype=np.uint64) < np.uint64(min(int(fraction * 2**64), 2**64 - 1))
    return keep[codes] if len(codes) else np.zeros(0, dtype=bool)
