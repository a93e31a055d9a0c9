"""The admin's static files come from eldric-cloudd itself, under both servers, with no
separate web server: the complaint was a grey admin with every /static/admin/* a 404."""

from __future__ import annotations

from pathlib import Path

import django.contrib.admin
import pytest

from tests.cli_process import GatewayProcess

ADMIN_STATIC = Path(django.contrib.admin.__file__).parent / "static" / "admin"


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_admin_css_served_by_the_gateway_process(server, data_dir):
    process = GatewayProcess(data_dir=data_dir(), server=server).start()
    try:
        css = process.get("/static/admin/css/base.css")
        assert css.status_code == 200, css.text[:200]
        assert css.headers["content-type"].startswith("text/css")
        assert css.content == (ADMIN_STATIC / "css" / "base.css").read_bytes()

        js = process.get("/static/admin/js/actions.js")
        assert js.status_code == 200
        assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))

        # Conditional requests work: the admin's assets are cached by browsers.
        again = process.get("/static/admin/css/base.css", headers={"If-None-Match": css.headers["etag"]})
        assert again.status_code == 304

        assert process.get("/static/admin/css/no-such-file.css").status_code == 404
        # The gateway's own routes are untouched.
        assert process.get("/health").status_code == 200
        assert "StreamingHttpResponse must consume" not in process.logs()
    finally:
        process.stop()
