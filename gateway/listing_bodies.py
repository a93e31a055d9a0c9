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

# Entries kept; a new catalogue body makes the old ones unreachable long before this is reached.
MAX_ENTRIES = 256


class ListingBodies:
    def __init__(self, gzip_min_bytes: int, max_entries: int = MAX_ENTRIES):
        self.gzip_min_bytes = gzip_min_bytes
        self.max_entries = max_entries
        # key -> (source body, derived body, or the future computing it)
        self._entries: dict[tuple, tuple[bytes, bytes | asyncio.Future]] = {}

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
        entry = self._entries.get(key)
        if entry is None or entry[0] is not source:  # an id reused by a newer body
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            future = asyncio.get_running_loop().run_in_executor(None, compute)
            entry = (source, future)
            self._entries[key] = entry
            future.add_done_callback(lambda done: self._settle(key, source, done))
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
        else:
            self._entries[key] = (source, future.result())


def _filter(catalogue: bytes, patterns: tuple[str, ...], allowed: Callable[[tuple, str], bool]) -> bytes:
    listing = json.loads(catalogue)
    listing["data"] = [model for model in listing.get("data", []) if allowed(patterns, str(model.get("id", "")))]
    return json.dumps(listing).encode()
