"""How the account-state table's values are written to its changelog (and the RocksDB store).

Faust's ``json`` codec uses the standard library's encoder, in Python: a state is several
kilobytes of nested dicts and lists, and every changed account of every batch is written, so it
was about a twentieth of the worker's main thread. pydantic-core (already here through pydantic)
encodes and parses the same JSON in Rust, about twice as fast each way.

Each reads what the other writes, so a store written by the stock codec reads back, and
values come back as the standard library would give them: floats in their shortest round-trip
form (``1e-7`` where ``json`` writes ``1e-07``), integer dict keys as strings (``from_dict``
turns them back), and non-finite floats as ``Infinity``/``NaN``, as ``json`` writes them, not
``null``.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from faust.serializers.codecs import Codec


class StateJson(Codec):
    def _dumps(self, obj: Any) -> bytes:
        return pydantic_core.to_json(obj, inf_nan_mode="constants")

    def _loads(self, s: bytes) -> Any:
        return pydantic_core.from_json(s, allow_inf_nan=True)


STATE_CODEC = StateJson()
