"""Labels of stored objects, kept between LISTs so a label-selected LIST decodes only what matches.

Owns: per key prefix (one LIST's range, e.g. all pods or one namespace's pods), each key's labels at
the revision they were read (mod_revision); an entry is reused while the key's mod_revision is
unchanged, so after the first LIST only objects written since are decoded to learn their labels.
Each LIST rebuilds its prefix's table from the keys it saw, so deleted keys drop out; at most
MAX_PREFIXES tables are kept (the least recently used goes). At 30,000 pods a LIST selecting 100 of
them decodes 100 objects instead of 30,000.
Must not import: anything above the api layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from orchestra.store.types import KeyValue

MAX_PREFIXES = 32
Labels = Mapping[str, str]


class LabelCache:
    def __init__(self, decode: Callable[[KeyValue], dict[str, Any]]) -> None:
        self._decode = decode
        self._tables: dict[str, dict[str, tuple[int, Labels]]] = {}

    def matching_keys(
        self, prefix: str, kvs: Iterable[KeyValue], matches: Callable[[Labels], bool]
    ) -> set[str]:
        """The keys of the kvs whose object's labels satisfy `matches`."""
        old = self._tables.pop(prefix, None) or {}
        table: dict[str, tuple[int, Labels]] = {}
        out = set()
        for kv in kvs:
            entry = old.get(kv.key)
            if entry is None or entry[0] != kv.mod_revision:
                labels = (self._decode(kv).get("metadata") or {}).get("labels") or {}
                entry = (kv.mod_revision, labels)
            table[kv.key] = entry
            if matches(entry[1]):
                out.add(kv.key)
        self._tables[prefix] = table  # most recently used last
        while len(self._tables) > MAX_PREFIXES:
            del self._tables[next(iter(self._tables))]
        return out
