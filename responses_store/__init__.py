"""Recent ``/v1/responses`` answers, kept so a later request can continue one with
``previous_response_id`` when its backend does not speak the Responses API itself."""
