"""Form posts reach Django intact through Daphne: the admin's login works on the real server.

The server no longer lets Twisted parse POST bodies (it did so for every request, and Daphne
never used the result), so what is checked here is that Django still gets every byte.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_process import GatewayProcess, clean_environment

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


@pytest.fixture(scope="module")
def server(data_dir):
    directory = data_dir()
    subprocess.run(
        [
            sys.executable,
            str(MANAGE),
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "User.objects.create_superuser('root', password='pw-root-123')",
        ],
        env=clean_environment(ELDRIC_DATA_DIR=str(directory)),
        check=True,
        capture_output=True,
        timeout=60,
    )
    gateway = GatewayProcess(data_dir=directory).start()
    yield gateway
    gateway.stop()


def login(server: GatewayProcess, password: str, content_type: str | None = None):
    with server.client(follow_redirects=False) as client:
        page = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        form = {"csrfmiddlewaretoken": token, "username": "root", "password": password, "next": "/admin/"}
        if content_type is None:
            answer = client.post("/admin/login/", data=form)
        else:
            answer = client.post("/admin/login/", files={"_": ("", b"")}, data=form)
        return answer, client.get("/admin/", follow_redirects=False) if answer.status_code == 302 else None


def test_an_operator_logs_in_with_a_urlencoded_form(server):
    answer, admin = login(server, "pw-root-123")
    assert answer.status_code == 302 and answer.headers["location"] == "/admin/"
    assert admin.status_code == 200 and "Site administration" in admin.text


def test_a_multipart_form_reaches_django_too(server):
    answer, admin = login(server, "pw-root-123", content_type="multipart/form-data")
    assert answer.status_code == 302
    assert admin.status_code == 200


def test_a_wrong_password_is_refused_by_django_not_the_server(server):
    answer, _ = login(server, "wrong")
    assert answer.status_code == 200
    assert "Please enter the correct username and password" in answer.text
