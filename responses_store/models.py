"""One row per stored response: the conversation it continued, and what it answered."""

from django.db import models


class StoredResponse(models.Model):
    # ``resp_…``: what the client names in ``previous_response_id``. Unique, so the lookup is
    # one index probe.
    response_id = models.CharField(max_length=64, unique=True)
    # The organisation slug of the key that made it: only that organisation may continue it.
    organisation = models.CharField(max_length=64)
    model = models.CharField(max_length=256, blank=True, default="")
    # Responses input items of every turn up to this one (this request's input included),
    # then the items this response answered with: what the next turn is sent as history.
    input_items = models.JSONField(default=list)
    output_items = models.JSONField(default=list)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.response_id
