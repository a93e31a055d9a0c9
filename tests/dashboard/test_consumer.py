"""The dashboard's websocket consumer, through Channels' session middleware as deployed
(eldric_cloud/asgi.py): staff only, same origin only, gated below Professional; a full
state on connect, then fresh ones pushed as the database changes; never a raw key."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from backends.models import Backend
from dashboard.publisher import DashboardPublisher
from dashboard.routing import websocket_urlpatterns
from tests.dashboard.conftest import RAW_KEY

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/dashboard/ws/"
DEADLINE = 10  # seconds; generous, pushes come every 0.1 s here


def application(publisher: DashboardPublisher | None = None):
    publisher = publisher or DashboardPublisher(interval=0.1, models_every=60)
    return AuthMiddlewareStack(URLRouter(websocket_urlpatterns(publisher))), publisher


def session_cookie(user: User | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"testserver")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def communicator(user: User | None, *, origin: bytes | None = b"http://testserver", publisher=None):
    app, publisher = application(publisher)
    headers = await sync_to_async(session_cookie)(user)
    if origin is not None:
        headers.append((b"origin", origin))
    socket = WebsocketCommunicator(app, PATH, headers=headers)
    connected, _ = await socket.connect(timeout=DEADLINE)
    return socket, connected, publisher


async def next_state(socket, predicate=lambda state: True) -> dict:
    """The next pushed state for which ``predicate`` holds (within the deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        frame = json.loads(await socket.receive_from(timeout=max(0.1, deadline - loop.time())))
        assert frame["type"] == "state"
        if predicate(frame["state"]):
            return frame["state"]


@pytest.fixture
def staff(staff_user):
    return staff_user


async def test_a_staff_session_gets_the_state_then_live_updates(staff, two_backends):
    socket, connected, publisher = await communicator(staff)
    assert connected
    first = await next_state(socket)
    assert {b["name"]: b["status"] for b in first["backends"]} == {"alpha": "healthy", "beta": "healthy"}
    assert first["models"] is not None  # the catalogue comes whole on connect
    assert publisher.subscribers == 1

    await sync_to_async(Backend.objects.filter(name="alpha").update)(health_status="unhealthy", last_error="refused")

    pushed = await next_state(socket, lambda s: {b["name"]: b["status"] for b in s["backends"]}["alpha"] != "healthy")
    alpha = {b["name"]: b for b in pushed["backends"]}["alpha"]
    assert alpha["status"] == "unhealthy" and alpha["colour"] == first["statuses"]["unhealthy"]["colour"]

    await socket.disconnect()
    assert publisher.subscribers == 0


async def test_unchanged_models_are_not_resent_but_a_request_gets_everything(staff, two_backends):
    socket, connected, _ = await communicator(staff)
    assert connected
    await next_state(socket)
    # The publisher's first push carries the catalogue; later ones, while it is unchanged, do not.
    await next_state(socket, lambda s: s["models"] is None)

    await socket.send_to(text_data='"refresh"')
    again = await next_state(socket, lambda s: s["models"] is not None)
    assert {m["id"] for m in again["models"]} == {"gpt-4o", "only-on-beta"}
    await socket.disconnect()


async def test_five_sockets_share_one_publisher(staff, two_backends):
    publisher = DashboardPublisher(interval=0.1, models_every=60)
    sockets = []
    for _ in range(5):
        socket, connected, _ = await communicator(staff, publisher=publisher)
        assert connected
        sockets.append(socket)
    assert publisher.subscribers == 5
    for socket in sockets:
        await next_state(socket)  # the connect frame
        await next_state(socket, lambda s: s["models"] is None)  # a pushed one
    for socket in sockets:
        await socket.disconnect()
    assert publisher.subscribers == 0 and publisher._task is None


@pytest.mark.parametrize("who", ["anonymous", "not staff"])
async def test_no_staff_session_no_socket(who):
    user = None
    if who == "not staff":
        user = await sync_to_async(User.objects.create_user)("bob", password="pw-bob-123")

    socket, connected, publisher = await communicator(user)

    assert not connected and publisher.subscribers == 0
    await socket.disconnect()


async def test_a_cross_site_origin_is_refused(staff):
    socket, connected, _ = await communicator(staff, origin=b"https://evil.example")
    assert not connected
    await socket.disconnect()


async def test_a_client_without_origin_is_accepted(staff):
    socket, connected, _ = await communicator(staff, origin=None)
    assert connected
    await socket.disconnect()


@pytest.mark.license_tier("standard")
async def test_below_professional_the_socket_is_refused(staff):
    socket, connected, _ = await communicator(staff)
    assert not connected
    await socket.disconnect()


async def test_no_raw_key_in_any_frame(staff, two_backends):
    socket, connected, _ = await communicator(staff)
    assert connected
    for _ in range(3):
        text = await socket.receive_from(timeout=DEADLINE)
        assert RAW_KEY not in text and RAW_KEY not in json.dumps(json.loads(text), ensure_ascii=False)
        hints = {b["api_key_hint"] for b in json.loads(text)["state"]["backends"]}
        assert hints == {"sk-…0000"}  # the hint is what the page shows
    await socket.disconnect()


async def test_with_redis_one_publisher_serves_the_pages_of_every_instance(settings, staff, two_backends):
    import uuid

    import redis

    from dashboard.publisher import LEASE_KEY
    from tests.conftest import service_missing

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
    except redis.RedisError:
        service_missing("Redis on 127.0.0.1:6379")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"], "prefix": f"eldric-test-{uuid.uuid4().hex}"},
        }
    }
    # Two instances: each has its own publisher, the group spans both through Redis.
    one = DashboardPublisher(interval=0.1, models_every=60)
    two = DashboardPublisher(interval=0.1, models_every=60)
    first, connected_first, _ = await communicator(staff, publisher=one)
    second, connected_second, _ = await communicator(staff, publisher=two)
    assert connected_first and connected_second
    await next_state(first)
    await next_state(second)

    pushed_first = await next_state(first, lambda s: s["models"] is None)
    pushed_second = await next_state(second, lambda s: s["generated_at"] >= pushed_first["generated_at"])

    from django.core.cache import cache

    holder = await sync_to_async(cache.get)(LEASE_KEY)
    publishing, idle = (one, two) if holder == one.token else (two, one)
    assert holder == publishing.token
    # The idle instance's page got pushed frames all the same: the holder's, through Redis.
    assert publishing.published >= 1 and idle.published == 0
    assert pushed_second["models"] is None  # a push, not the frame sent on connect
    await first.disconnect()
    await second.disconnect()


async def test_logging_out_ends_an_open_socket(staff, two_backends, monkeypatch):
    from importlib import import_module

    from django.conf import settings as django_settings

    from dashboard import consumers

    monkeypatch.setattr(consumers, "RECHECK_SECONDS", 0.0)  # re-check on every push
    socket, connected, _ = await communicator(staff)
    assert connected
    await next_state(socket)
    await next_state(socket)  # pushes arrive while the session is valid

    cookie = dict(socket.scope["headers"])[b"cookie"].decode().split("=", 1)[1]
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    await sync_to_async(store(session_key=cookie).delete)()  # what logging out does

    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        output = await socket.receive_output(timeout=max(0.1, deadline - loop.time()))
        if output["type"] == "websocket.close":
            break
    await socket.disconnect()


async def test_the_frames_carry_the_publishers_routing_decisions(staff, two_backends):
    from gateway.context import Attempt, RequestContext
    from traffic.decisions import DecisionRing

    ring = DecisionRing(size=100)
    publisher = DashboardPublisher(interval=0.1, models_every=60, decisions=ring)
    ctx = RequestContext(request_id="req_dash_1", dialect="openai.chat", model="gpt-4o", backend="beta", status=200)
    ctx.attempts = [Attempt("alpha", 0.0, 0.1, outcome="timeout", reason="no answer within 30 s")]
    ctx.attempts.append(Attempt("beta", 0.1, 0.2, outcome="ok", status=200))
    ctx.done = ctx.received + 0.2
    ring.request_finished(ctx)

    socket, connected, _ = await communicator(staff, publisher=publisher)
    assert connected
    first = await next_state(socket)
    pushed = await next_state(socket, lambda s: s["models"] is None)

    for state in (first, pushed):
        (decision,) = state["decisions"]
        assert decision["request_id"] == "req_dash_1" and decision["backend"] == "beta"
        assert decision["failovers"] == [
            {"backend": "alpha", "outcome": "timeout", "status": None, "reason": "no answer within 30 s"}
        ]
    await socket.disconnect()
