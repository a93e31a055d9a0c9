"""Start-up configuration: the seed's ``--backends`` flag and JSON config file, validated.

Pure parsing: nothing here touches Django, so bad input stops start-up before anything runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from backends.presets import key_env_var, kind_for_name, preset_for
from backends.specs import BackendSpec

BACKEND_KINDS = ("openai_compatible", "anthropic", "cohere", "ollama")
TOP_LEVEL_KEYS = {
    "port": int,
    "controller_url": str,
    "default_backend": str,
    "health_check_interval_ms": int,
    "backends": list,
}
BACKEND_KEYS = {
    "name": str,
    "type": str,
    "url": str,
    "api_key": str,
    "priority": int,
    "enabled": bool,
    "headers": dict,
    "responses_api": bool,
}
TYPE_NAMES = {int: "an integer", str: "a string", bool: "a boolean", list: "an array", dict: "an object"}


class ConfigError(Exception):
    """A start-up configuration problem, worded for the operator."""


@dataclass(frozen=True)
class FileConfig:
    port: int | None = None
    controller_url: str | None = None
    default_backend: str | None = None
    health_check_interval_ms: int | None = None
    backends: list[BackendSpec] = field(default_factory=list)


def _check_name(name: str, where: str) -> str:
    if not name or not all(c.isalnum() or c in "-_" for c in name) or len(name) > 64:
        raise ConfigError(f"{where}: backend name {name!r} must be 1-64 letters, digits, '-' or '_'")
    return name


def _check_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: url {url!r} must be an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 - raises ValueError for "host:99999" or "host:1:2"
    except ValueError:
        raise ConfigError(f"{where}: url {url!r} has an invalid port") from None
    return url.rstrip("/")


def _is_port(head: str, tail: str) -> bool:
    """Whether ``tail`` in ``head:tail`` is the URL's port rather than an API key: digits
    right after the host (``http://10.0.0.5:11434``), not after a path or an existing port."""
    if not tail.isdigit():
        return False
    parts = urlsplit(head)
    return not parts.path and ":" not in parts.netloc.rpartition("]")[2]


def _key_from_env(name: str) -> str:
    return os.environ.get(key_env_var(name), "")


def parse_backend_entry(entry: str, position: int) -> BackendSpec:
    """One ``name:url:apikey`` entry. URLs hold colons, so the key is split off the end only
    when what remains is still a URL and the tail is not a port or a path. ``name::`` and
    ``name::key`` take a known provider's URL."""
    name, sep, rest = entry.strip().partition(":")
    where = f"--backends entry {position + 1} ({name!r})"
    if not sep:
        raise ConfigError(f"{where}: expected name:url:apikey")
    _check_name(name, where)
    url, key = rest, ""
    head, colon, tail = rest.rpartition(":")
    if colon and head == "":  # "name::" or "name::key"
        url, key = "", tail
    elif colon and "://" in head and "/" not in tail and "]" not in tail and not _is_port(head, tail):
        url, key = head, tail
    preset = preset_for(name)
    if not url:
        if preset is None:
            raise ConfigError(f"{where}: no url given and {name!r} is not a known provider")
        url = preset.url
    return BackendSpec(
        name=name,
        url=_check_url(url, where),
        kind=kind_for_name(name),
        api_key=key or _key_from_env(name),
        priority=position + 1,
    )


def parse_backends_flag(value: str) -> list[BackendSpec]:
    entries = [e for e in value.split(",") if e.strip()]
    if not entries:
        raise ConfigError("--backends: no backend given")
    backends = [parse_backend_entry(e, i) for i, e in enumerate(entries)]
    _check_unique(backends, "--backends")
    return backends


def _check_unique(backends: list[BackendSpec], where: str) -> None:
    seen = set()
    for backend in backends:
        if backend.name in seen:
            raise ConfigError(f"{where}: backend {backend.name!r} is listed twice")
        seen.add(backend.name)


def _check_type(value, expected: type, where: str) -> None:
    # bool is an int in Python; the config file must say what it means.
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        # Secrets are never echoed, even when they are of the wrong type.
        shown = "" if where.endswith((".api_key", ".headers")) else f" {value!r}"
        raise ConfigError(f"{where}: expected {TYPE_NAMES[expected]}, got {type(value).__name__}{shown}")


def load_config_file(path: str) -> FileConfig:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    for key, value in data.items():
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{path}: {key}: unknown key (allowed: {', '.join(TOP_LEVEL_KEYS)})")
        _check_type(value, TOP_LEVEL_KEYS[key], f"{path}: {key}")
    backends = [_file_backend(path, i, item) for i, item in enumerate(data.get("backends", []))]
    _check_unique(backends, f"{path}: backends")
    port = data.get("port")
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{path}: port: {port} is not a TCP port")
    interval = data.get("health_check_interval_ms")
    if interval is not None and interval < 100:
        raise ConfigError(f"{path}: health_check_interval_ms: must be at least 100")
    controller = data.get("controller_url")
    if controller:
        _check_url(controller, f"{path}: controller_url")
    return FileConfig(
        port=port,
        controller_url=controller,
        default_backend=data.get("default_backend"),
        health_check_interval_ms=interval,
        backends=backends,
    )


def _file_backend(path: str, index: int, item) -> BackendSpec:
    where = f"{path}: backends[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected an object")
    for key, value in item.items():
        if key not in BACKEND_KEYS:
            raise ConfigError(f"{where}.{key}: unknown key (allowed: {', '.join(BACKEND_KEYS)})")
        _check_type(value, BACKEND_KEYS[key], f"{where}.{key}")
    if "name" not in item:
        raise ConfigError(f"{where}.name: required")
    name = _check_name(item["name"], f"{where}.name")
    preset = preset_for(name)
    url = item.get("url") or (preset.url if preset else "")
    if not url:
        raise ConfigError(f"{where}.url: required (no preset for {name!r})")
    kind = item.get("type") or kind_for_name(name)
    if kind not in BACKEND_KINDS:
        raise ConfigError(f"{where}.type: {kind!r} is not one of {', '.join(BACKEND_KINDS)}")
    priority = item.get("priority", 100)
    if priority < 0:
        raise ConfigError(f"{where}.priority: must not be negative")
    headers = item.get("headers", {})
    for header_name, header_value in headers.items():
        if not isinstance(header_value, str):
            raise ConfigError(f"{where}.headers.{header_name}: expected a string")
    return BackendSpec(
        name=name,
        url=_check_url(url, f"{where}.url"),
        kind=kind,
        api_key=item.get("api_key") or _key_from_env(name),
        priority=priority,
        enabled=item.get("enabled", True),
        headers=headers,
        responses_api=item.get("responses_api"),
    )


def merge_backends(from_file: list[BackendSpec], from_flags: list[BackendSpec]) -> list[BackendSpec]:
    """Flags override the file: a backend named in both takes the flag's definition."""
    merged = {b.name: b for b in from_file}
    merged.update({b.name: b for b in from_flags})
    return list(merged.values())
