"""Usage records, written in batches from the pipeline's request events, never inline."""

from __future__ import annotations


class UsageRecorder:
    """A gateway observer. (Filled in with usage records.)"""

    @classmethod
    def from_settings(cls) -> UsageRecorder:
        return cls()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def request_finished(self, ctx) -> None:
        pass
