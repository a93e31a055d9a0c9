"""Static files (the admin's, the dashboard's) served by eldric-cloudd itself, through WhiteNoise.

The gateway's ASGI app answers ``/v1/*`` and ``/health`` before Django is reached, so this
middleware never sees the hot path. WhiteNoise is a sync middleware: under ASGI Django runs it
in a worker thread. Its ``FileResponse`` wraps an open file, a sync iterator that Django's ASGI
handler reads whole into memory anyway (with a warning per response); reading the file here,
in that same thread, gives the same bytes without the warning. Static files are small (the
largest admin file is a few hundred KiB).
"""

from __future__ import annotations

from django.http import HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    @staticmethod
    def serve(static_file, request):
        response = static_file.get_response(request.method, request.META)
        if response.file is not None:
            with response.file as handle:
                body = handle.read()
        else:  # HEAD, 304 Not Modified, 416
            body = b""
        http_response = HttpResponse(body, status=int(response.status))
        del http_response["content-type"]  # WhiteNoise sends its own
        for key, value in response.headers:
            http_response[key] = value
        return http_response
