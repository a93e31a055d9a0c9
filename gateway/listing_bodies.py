"""``/v1/models`` bodies derived from the routing snapshot's catalogue: the listing a key limited
to some models may see, and gzip for clients that accept it.

A catalogue of 100,000 models is an 11 MB body. Filtering it (a JSON parse and render) or
compressing it takes tens to hundreds of milliseconds, so each is computed once per catalogue
body, on a thread, with the event loop serving meanwhile; requests that arrive while it runs
wait for the same result. Keyed by the body object, not the snapshot: a rebuild that changed no
model (a probe) keeps the body, and what was derived from it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable

# What the derived bodies may hold, with the bodies they came from: a catalogue replaced by
# discovery leaves its entries behind, and the least recently used go first.
MAX_BYTES = 64 * 1024 * 1024


class ListingBodies:
    def __init__(self, gzip_min_bytes: int, max_bytes: int = MAX_BYTES):
        self.gzip_min_bytes = gzip_min_bytes
        self.max_bytes = max_bytes
        # key -> (source body, derived body or the future computing it); oldest use first.
        self._entries: dict[tuple, tuple[bytes, bytes | asyncio.Future]] = {}
        self._held = 0  # bytes of the settled entries, each counted with its source

    def worth_gzip(self, body: bytes) -> bool:
        return 0 < self.gzip_min_bytes <= len(body)

    async def filtered(
        self, catalogue: bytes, patterns: tuple[str, ...], allowed: Callable[[tuple, str], bool]
    ) -> bytes:
        """The catalogue with only the models ``patterns`` allow."""
        key = ("filtered", id(catalogue), patterns)
        return await self._derive(key, catalogue, lambda: _filter(catalogue, patterns, allowed))

    async def gzipped(self, body: bytes) -> bytes:
        return await self._derive(("gzip", id(body)), body, lambda: gzip.compress(body, compresslevel=6, mtime=0))

    async def _derive(self, key: tuple, source: bytes, compute: Callable[[], bytes]) -> bytes:
        entry = self._entries.pop(key, None)
        if entry is not None and entry[0] is not source:  # an id reused by a newer body
            self._forget(entry)
            entry = None
        if entry is None:
            future = asyncio.get_running_loop().run_in_executor(None, compute)
            entry = (source, future)
            future.add_done_callback(lambda done: self._settle(key, source, done))
        self._entries[key] = entry  # now the most recently used
        derived = entry[1]
        if isinstance(derived, bytes):
            return derived
        # Shielded: a caller that disconnects does not cancel the work the others wait for.
        return await asyncio.shield(derived)

    def _settle(self, key: tuple, source: bytes, future: asyncio.Future) -> None:
        entry = self._entries.get(key)
        if entry is None or entry[1] is not future:
            return
        if future.cancelled() or future.exception() is not None:
            del self._entries[key]  # the next request tries again
            return
        derived = future.result()
        self._entries[key] = (source, derived)
        self._held += len(source) + len(derived)
        for old in [k for k in self._entries if k != key]:  # least recently used first
            if self._held <= self.max_bytes:
                break
            self._forget(self._entries.pop(old))

    def _forget(self, entry: tuple[bytes, bytes | asyncio.Future]) -> None:
        if isinstance(entry[1], bytes):
            self._held -= len(entry[0]) + len(entry[1])

    @property
    def held_bytes(self) -> int:
        return self._held


def _filter(catalogue: bytes, patterns: tuple[str, ...], allowed: Callable[[tuple, str], bool]) -> bytes:
    listing = json.loads(catalogue)
    listing["data"] = [model for model in listing.get("data", []) if allowed(patterns, str(model.get("id", "")))]
    return json.dumps(listing).encode()
