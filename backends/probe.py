"""Live checks of one backend over its model-list endpoint (costs no tokens).

Synchronous on purpose: it runs in Celery workers and at start-up, never on the hot path.
Whatever the backend sends, ``probe`` returns a ProbeResult and never raises: start-up,
the periodic checks and the test endpoints all rely on that.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpcore
import httpx
from django.conf import settings

from backends.models import HealthStatus
from backends.providers import provider_for
from backends.providers.base import ModelInfo, ProviderError
from backends.redaction import redact
from backends.snapshot import BackendRoute
from backends.url_policy import Resolver, UrlDenied, UrlPolicy, url_policy

logger = logging.getLogger(__name__)

# A provider that paginates forever must not keep a worker busy.
MAX_MODEL_PAGES = 50
# DiscoveredModel.model_id is a 255-character column.
MAX_MODEL_ID_LENGTH = 255
# Enough of an error body to read its message; the rest is dropped, not an error.
MAX_ERROR_BODY_BYTES = 64 * 1024
# last_error is shown in the API, the admin and the dashboard.
MAX_ERROR_LENGTH = 1000
BIGINT = 2**63
SECRET_HEADER = re.compile(r"key|auth|token|secret", re.I)


@dataclass(frozen=True)
class ProbeResult:
    status: str  # a HealthStatus value
    latency_ms: float | None = None
    http_status: int | None = None
    error: str = ""
    models: list[ModelInfo] = field(default_factory=list)

    def __post_init__(self) -> None:
        # The error is stored (last_error) and rendered: no NUL (PostgreSQL refuses it), no lone
        # surrogate (neither SQLite nor psycopg can encode it), and a bounded length.
        text = self.error.replace("\x00", "").encode("utf-8", "backslashreplace").decode("utf-8")
        if len(text) > MAX_ERROR_LENGTH:
            text = text[: MAX_ERROR_LENGTH - 1] + "…"
        object.__setattr__(self, "error", text)

    @property
    def reachable(self) -> bool:
        return self.http_status is not None


@dataclass(frozen=True)
class ProbeLimits:
    body_bytes: int
    models: int
    model_id_length: int = MAX_MODEL_ID_LENGTH

    @classmethod
    def from_settings(cls) -> ProbeLimits:
        return cls(body_bytes=settings.ELDRIC_MAX_MODELS_BODY_BYTES, models=settings.ELDRIC_MAX_MODELS_PER_BACKEND)


class _Failed(Exception):
    """Ends the probe with this result."""

    def __init__(self, result: ProbeResult) -> None:
        super().__init__(result.error)
        self.result = result


def probe(
    route: BackendRoute,
    *,
    timeout: float,
    limits: ProbeLimits | None = None,
    policy: UrlPolicy | None = None,
    resolver: Resolver | None = None,
) -> ProbeResult:
    """Fetch the backend's model list, timing the first answer and classifying failures.

    ``timeout`` is the deadline for the whole probe, every page included; ``policy`` (the
    settings' URL deny list by default) is checked before each connection, with ``resolver``.
    """
    try:
        run = _Probe(
            route,
            timeout=timeout,
            limits=limits or ProbeLimits.from_settings(),
            policy=policy or url_policy(),
            resolver=resolver,
        )
        return run.run()
    except _Failed as failed:
        return failed.result
    except Exception as exc:
        # A gap in this module or in httpx, not something to die of: report it like the rest.
        _log_failure(route, "probing", exc, (route.api_key, *(v for _, v in route.headers)))
        return ProbeResult(HealthStatus.UNHEALTHY, error=f"the probe failed ({type(exc).__name__}); see the server log")


def _log_failure(route: BackendRoute, what: str, exc: Exception, secrets: tuple[str, ...]) -> None:
    detail = redact(f"{type(exc).__name__}: {exc}", *secrets)
    # Once, with the traceback (unless the exception's own text carries a secret).
    logger.error(
        "backend %s (%s): failed on %s: %s",
        route.name,
        route.kind,
        what,
        detail,
        exc_info=not any(s and s in str(exc) for s in secrets),
    )


class _Probe:
    def __init__(
        self, route: BackendRoute, *, timeout: float, limits: ProbeLimits, policy: UrlPolicy, resolver: Resolver | None
    ) -> None:
        self.route = route
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.limits = limits
        self.policy = policy
        self.resolver = resolver
        self.latency_ms: float | None = None
        self.http_status: int | None = None
        self.headers: dict[str, str] = {}
        self.location = "elsewhere"
        secrets = [v for k, v in route.headers if SECRET_HEADER.search(k) and len(v) >= 8]
        self.secrets = (route.api_key, *secrets)

    def fail(self, error: str, status: str = HealthStatus.UNHEALTHY) -> _Failed:
        return _Failed(ProbeResult(status, self.latency_ms, self.http_status, redact(error, *self.secrets)))

    def adapter(self, what: str, call: Callable, *args):
        """Call the adapter; whatever it raises ends the probe as unhealthy, readably."""
        try:
            return call(*args)
        except ProviderError as exc:
            raise self.fail(str(exc)) from None
        except Exception as exc:
            # A gap in the adapter, worth a look in the log; the probe just reports it.
            _log_failure(self.route, what, exc, self.secrets)
            name = type(exc).__name__
            raise self.fail(f"{what}: the answer could not be read ({name}); see the server log") from None

    def run(self) -> ProbeResult:
        self.provider = self.adapter("loading the adapter", provider_for, self.route.kind)
        request = self.adapter("building the request", self.provider.models_request, self.route)
        models = _Models(self.route.name, self.limits)
        with httpx.Client(follow_redirects=False, transport=self.transport()) as client:
            for _ in range(MAX_MODEL_PAGES):
                status, body = self.fetch(client, request)
                if 300 <= status < 400:
                    raise self.fail(f"HTTP {status}: redirected to {self.location}; check the backend's URL")
                if status >= 400:
                    mapped = self.adapter("the error answer", self.provider.error, status, body, self.headers)
                    health = HealthStatus.AUTH_FAILED if mapped.status in (401, 403) else HealthStatus.UNHEALTHY
                    raise self.fail(f"HTTP {status}: {mapped.message}", health)
                page = self.adapter("the model list", self.provider.parse_models, self.route, body)
                if not models.add(page.models) or page.next_request is None:
                    break
                request = page.next_request
        models.warn()
        return ProbeResult(HealthStatus.HEALTHY, self.latency_ms, 200, models=models.kept)

    def fetch(self, client: httpx.Client, request) -> tuple[int, bytes]:
        # Checked again at connect time (_CheckedBackend); this one also holds when an
        # HTTP(S)_PROXY from the environment makes the connection for us.
        denial = self.policy.check(request.url, resolver=self.resolver)
        if denial is not None:
            raise self.fail(f"url: {denial}")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self.timed_out()
        started = time.perf_counter()
        try:
            # Each wait is bounded by what is left; the clock is checked between chunks too,
            # since a byte a second would reset a plain read timeout for ever.
            with client.stream(
                request.method,
                request.url,
                headers=request.headers,
                content=request.content,
                timeout=httpx.Timeout(remaining),
            ) as response:
                if self.latency_ms is None:
                    self.latency_ms = round((time.perf_counter() - started) * 1000, 1)
                self.http_status = response.status_code
                self.headers = dict(response.headers)
                self.location = response.headers.get("location", "elsewhere")
                return response.status_code, self.read(response)
        except UrlDenied as exc:
            raise self.fail(f"url: {exc}") from None
        except httpx.TimeoutException:
            raise self.timed_out() from None
        except (httpx.InvalidURL, UnicodeError) as exc:
            # A stored URL, key or header httpx cannot send (e.g. from an old config file).
            raise self.fail(f"cannot build the request: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            if self.http_status is None:
                raise self.fail(f"cannot connect: {type(exc).__name__}") from None
            raise self.fail(f"the answer broke off: {type(exc).__name__}") from None

    def read(self, response: httpx.Response) -> bytes:
        ok = response.status_code < 300
        limit = self.limits.body_bytes if ok else MAX_ERROR_BODY_BYTES
        declared = response.headers.get("content-length", "")
        if ok and declared.isdigit() and int(declared) > limit:
            raise self.too_large()
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            if time.monotonic() > self.deadline:
                raise self.timed_out()
            size += len(chunk)
            if size > limit:
                if not ok:
                    break  # the start of an error body is enough to read its message
                raise self.too_large()
            chunks.append(chunk)
        return b"".join(chunks)[:limit]

    def transport(self) -> httpx.HTTPTransport:
        transport = httpx.HTTPTransport()
        # httpcore takes a network backend, httpx does not pass one through: set it on the pool.
        transport._pool._network_backend = _CheckedBackend(self.deadline, self.policy, self.resolver)
        return transport

    def timed_out(self) -> _Failed:
        return self.fail(f"timed out after {self.timeout:g}s")

    def too_large(self) -> _Failed:
        limit = self.limits.body_bytes
        return self.fail(f"the model list is larger than {limit} bytes (ELDRIC_MAX_MODELS_BODY_BYTES)")


class _Models:
    """The listing as it will be stored: capped in number, ids that fit the column."""

    def __init__(self, backend: str, limits: ProbeLimits) -> None:
        self.backend = backend
        self.limits = limits
        self.kept: list[ModelInfo] = []
        self.seen: set[str] = set()
        self.skipped: list[object] = []
        self.truncated = False

    def add(self, page: list[ModelInfo]) -> bool:
        """Keep what fits; False once the cap is reached (no further pages needed)."""
        for model in page:
            if not _storable(model.id, self.limits.model_id_length):
                self.skipped.append(model.id)
                continue
            if model.id in self.seen:
                continue
            if len(self.kept) >= self.limits.models:
                self.truncated = True
                return False
            self.seen.add(model.id)
            created = model.created if isinstance(model.created, int) and 0 <= model.created < BIGINT else None
            self.kept.append(dataclasses.replace(model, created=created))
        return True

    def warn(self) -> None:
        if self.skipped:
            example = ascii(self.skipped[0])
            logger.warning(
                "backend %s: skipped %d model id(s) that are not strings of 1-%d characters, e.g. %s",
                self.backend,
                len(self.skipped),
                self.limits.model_id_length,
                example[:80] + ("…" if len(example) > 80 else ""),
            )
        if self.truncated:
            logger.warning(
                "backend %s lists more than %d models; keeping the first %d (ELDRIC_MAX_MODELS_PER_BACKEND)",
                self.backend,
                self.limits.models,
                self.limits.models,
            )


def _storable(model_id, max_length: int) -> bool:
    if not isinstance(model_id, str) or not 0 < len(model_id) <= max_length or "\x00" in model_id:
        return False
    try:
        model_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- the deadline and the URL policy, at each socket operation ---------------------------------
# httpx's timeouts bound each read, so a byte a second (in the headers too, where no chunk
# loop can look at the clock) would keep a probe alive for ever. Every connect, TLS
# handshake, read and write below gets at most what is left of the probe's deadline. And
# each connection goes to an address the URL policy has just approved, so a name cannot be
# re-pointed at a denied address between the check and the connection (TLS still verifies
# the host name: httpcore passes it to start_tls separately).


def _left(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the probe's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _CheckedBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float, policy: UrlPolicy, resolver: Resolver | None) -> None:
        self.deadline = deadline
        self.policy = policy
        self.resolver = resolver
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        denial, addresses = self.policy.check_host(host, port, resolver=self.resolver)
        if denial is not None:
            raise UrlDenied(denial)
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}")
        error: Exception | None = None
        for address in addresses:
            try:
                left = _left(self.deadline, timeout, httpcore.ConnectTimeout)
                stream = self.inner.connect_tcp(address, port, left, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc  # try the next address, as socket.create_connection would
                continue
            return _DeadlineStream(stream, self.deadline)
        raise error

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("backends are reached over TCP")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self.stream = stream
        self.deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, _left(self.deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, _left(self.deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        timeout = _left(self.deadline, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self.stream.start_tls(ssl_context, server_hostname, timeout), self.deadline)

    def get_extra_info(self, info: str):
        return self.stream.get_extra_info(info)
