"""Start-up configuration: ``--backends`` entries, presets, the JSON config file, and flags over file.

Pure parsing: no database, no Django request cycle.
"""

from __future__ import annotations

import json
import re

import pytest

from backends.presets import PRESETS, key_env_var, kind_for_name, preset_for
from eldric_cloud.cli import Options, build_parser
from eldric_cloud.startup import (
    BackendSpec,
    ConfigError,
    FileConfig,
    load_config_file,
    merge_backends,
    parse_backend_entry,
    parse_backends_flag,
)


@pytest.fixture(autouse=True)
def no_provider_keys(monkeypatch):
    """Keys in the developer's environment must not leak into these tests."""
    for name in [*PRESETS, "ollama-remote", "x", "local"]:
        monkeypatch.delenv(key_env_var(name), raising=False)


# --- presets ---------------------------------------------------------------------------------------

EXPECTED_PRESETS = {
    "xai": ("https://api.x.ai/v1", "openai_compatible", "XAI_API_KEY"),
    "openai": ("https://api.openai.com/v1", "openai_compatible", "OPENAI_API_KEY"),
    "anthropic": ("https://api.anthropic.com/v1", "anthropic", "ANTHROPIC_API_KEY"),
    "deepseek": ("https://api.deepseek.com/v1", "openai_compatible", "DEEPSEEK_API_KEY"),
    "groq": ("https://api.groq.com/openai/v1", "openai_compatible", "GROQ_API_KEY"),
    "together": ("https://api.together.xyz/v1", "openai_compatible", "TOGETHER_API_KEY"),
    "fireworks": ("https://api.fireworks.ai/inference/v1", "openai_compatible", "FIREWORKS_API_KEY"),
    "mistral": ("https://api.mistral.ai/v1", "openai_compatible", "MISTRAL_API_KEY"),
    "cohere": ("https://api.cohere.ai/v1", "cohere", "COHERE_API_KEY"),
    "ollama": ("http://localhost:11434", "ollama", "OLLAMA_API_KEY"),
}


@pytest.mark.parametrize("name", EXPECTED_PRESETS)
def test_preset(name):
    url, kind, variable = EXPECTED_PRESETS[name]
    assert (preset_for(name).url, preset_for(name).kind, key_env_var(name)) == (url, kind, variable)
    assert preset_for(name.upper()) == preset_for(name)
    assert kind_for_name(name) == kind


def test_every_preset_is_covered():
    assert set(PRESETS) == set(EXPECTED_PRESETS)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ollama-remote", "ollama"),
        ("Ollama_GPU", "ollama"),
        ("my-proxy", "openai_compatible"),
        ("ANTHROPIC", "anthropic"),
    ],
)
def test_kind_is_inferred_from_the_name(name, kind):
    assert kind_for_name(name) == kind


# --- --backends ------------------------------------------------------------------------------------


def test_seed_example_with_keys():
    backends = parse_backends_flag("xai:https://api.x.ai/v1:KEY1,openai:https://api.openai.com/v1:KEY2")
    assert backends == [
        BackendSpec("xai", "https://api.x.ai/v1", "openai_compatible", "KEY1", priority=1),
        BackendSpec("openai", "https://api.openai.com/v1", "openai_compatible", "KEY2", priority=2),
    ]


def test_url_with_a_port_and_no_key_reads_the_env_with_underscores(monkeypatch):
    monkeypatch.setenv("OLLAMA_REMOTE_API_KEY", "ol-secret")
    (backend,) = parse_backends_flag("ollama-remote:http://10.0.0.5:11434")
    assert (backend.name, backend.url, backend.kind, backend.api_key) == (
        "ollama-remote",
        "http://10.0.0.5:11434",
        "ollama",
        "ol-secret",
    )


@pytest.mark.parametrize(
    ("entry", "url", "key"),
    [
        ("x:https://h.example:8443/v1:KEY", "https://h.example:8443/v1", "KEY"),
        ("x:https://h.example:8443/v1", "https://h.example:8443/v1", ""),
        ("x:https://h.example:8443", "https://h.example:8443", ""),
        ("x:https://h.example:8443/v1/:KEY", "https://h.example:8443/v1", "KEY"),
        ("x:https://h.example/v1:12345", "https://h.example/v1", "12345"),  # an all-digit key is not a port
        ("x:https://h.example:8443:12345", "https://h.example:8443", "12345"),
        ("x:https://h.example/v1:", "https://h.example/v1", ""),  # "$X_API_KEY" that was empty
        ("x:https://h.example/v1:sk-a_b.c=", "https://h.example/v1", "sk-a_b.c="),
        ("local:http://[::1]:8080/v1", "http://[::1]:8080/v1", ""),
        ("  x:https://h.example/v1:KEY  ", "https://h.example/v1", "KEY"),
    ],
)
def test_entry_is_split_from_both_ends(entry, url, key):
    backend = parse_backend_entry(entry, 0)
    assert (backend.name, backend.url, backend.api_key) == (entry.strip().split(":")[0], url, key)


def test_known_providers_need_no_url(monkeypatch):
    monkeypatch.setenv("XAI_API_KEY", "xai-env")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ant-env")
    xai, anthropic, mistral = parse_backends_flag("xai::,anthropic::,mistral::mis-flag")
    assert (xai.url, xai.kind, xai.api_key, xai.priority) == ("https://api.x.ai/v1", "openai_compatible", "xai-env", 1)
    assert (anthropic.url, anthropic.kind, anthropic.api_key) == (
        "https://api.anthropic.com/v1",
        "anthropic",
        "ant-env",
    )
    assert (mistral.url, mistral.api_key, mistral.priority) == ("https://api.mistral.ai/v1", "mis-flag", 3)


def test_preset_url_can_be_overridden():
    (backend,) = parse_backends_flag("openai:https://proxy.example/v1:K")
    assert (backend.url, backend.kind) == ("https://proxy.example/v1", "openai_compatible")


def test_missing_key_stays_empty_without_env():
    (backend,) = parse_backends_flag("groq::")
    assert backend.api_key == ""
    assert "api_key" not in repr(backend)  # keys never reach logs through repr


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "no backend given"),
        (" , ", "no backend given"),
        ("xai", "entry 1 ('xai'): expected name:url:apikey"),
        ("xai::,bad name::", "entry 2 ('bad name'): backend name"),
        ("unknown::", "entry 1 ('unknown'): no url given and 'unknown' is not a known provider"),
        ("x:ftp://h.example/v1:K", "entry 1 ('x'): url 'ftp://h.example/v1' must be an http:// or https:// URL"),
        ("x:https://h.example:99999/v1", "entry 1 ('x'): url 'https://h.example:99999/v1' has an invalid port"),
        ("xai::,xai:https://h.example/v1", "backend 'xai' is listed twice"),
    ],
)
def test_bad_flag_values_name_the_entry_and_the_problem(value, problem):
    with pytest.raises(ConfigError, match=r"^--backends") as caught:
        parse_backends_flag(value)
    assert problem in str(caught.value)


# --- config file -----------------------------------------------------------------------------------

SEED_CONFIG = {
    "port": 8889,
    "controller_url": "http://controller:8880",
    "default_backend": "xai",
    "health_check_interval_ms": 60000,
    "backends": [
        {"name": "xai", "type": "openai_compatible", "url": "https://api.x.ai/v1", "api_key": "xai-...", "priority": 1},
        {"name": "anthropic", "type": "anthropic", "url": "https://api.anthropic.com/v1", "priority": 3},
        {"name": "ollama-remote", "type": "ollama", "url": "http://10.0.0.5:11434", "priority": 10, "enabled": True},
        {"name": "groq", "headers": {"x-team": "a"}, "enabled": False},
    ],
}


def write(tmp_path, content) -> str:
    path = tmp_path / "cloudd.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_seed_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ant-env")
    config = load_config_file(write(tmp_path, SEED_CONFIG))

    assert (config.port, config.controller_url, config.default_backend, config.health_check_interval_ms) == (
        8889,
        "http://controller:8880",
        "xai",
        60000,
    )
    xai, anthropic, ollama, groq = config.backends
    assert (xai.api_key, xai.priority) == ("xai-...", 1)
    assert (anthropic.kind, anthropic.api_key) == ("anthropic", "ant-env")
    assert (ollama.kind, ollama.url, ollama.priority) == ("ollama", "http://10.0.0.5:11434", 10)
    assert (groq.url, groq.enabled, groq.headers, groq.priority) == (
        "https://api.groq.com/openai/v1",
        False,
        {"x-team": "a"},
        100,
    )


@pytest.mark.parametrize(
    ("content", "where", "problem"),
    [
        ('{"port": 8889,', "", "not valid JSON"),
        ("[]", "", "the top level must be a JSON object"),
        ({"prot": 8889}, "prot", "unknown key"),
        ({"port": "8889"}, "port", "expected an integer, got str '8889'"),
        ({"port": True}, "port", "expected an integer, got bool"),
        ({"port": 70000}, "port", "is not a TCP port"),
        ({"health_check_interval_ms": 5}, "health_check_interval_ms", "must be at least 100"),
        ({"controller_url": "controller:8880"}, "controller_url", "must be an http:// or https:// URL"),
        ({"backends": {"name": "xai"}}, "backends", "expected an array, got dict"),
        ({"backends": ["xai"]}, "backends[0]", "expected an object"),
        ({"backends": [{"url": "https://h.example"}]}, "backends[0].name", "required"),
        ({"backends": [{"name": "xai", "apikey": "k"}]}, "backends[0].apikey", "unknown key"),
        ({"backends": [{"name": "xai", "priority": "1"}]}, "backends[0].priority", "expected an integer, got str"),
        ({"backends": [{"name": "xai", "priority": -1}]}, "backends[0].priority", "must not be negative"),
        ({"backends": [{"name": "xai", "enabled": "yes"}]}, "backends[0].enabled", "expected a boolean"),
        ({"backends": [{"name": "xai", "type": "openai"}]}, "backends[0].type", "'openai' is not one of"),
        ({"backends": [{"name": "x y", "url": "https://h.example"}]}, "backends[0].name", "backend name 'x y'"),
        ({"backends": [{"name": "mine"}]}, "backends[0].url", "required (no preset for 'mine')"),
        ({"backends": [{"name": "x", "url": "h.example/v1"}]}, "backends[0].url", "must be an http"),
        ({"backends": [{"name": "xai", "headers": {"x-a": 1}}]}, "backends[0].headers.x-a", "expected a string"),
        ({"backends": [{"name": "xai"}, {"name": "xai"}]}, "backends", "backend 'xai' is listed twice"),
    ],
)
def test_config_errors_name_file_field_and_problem(tmp_path, content, where, problem):
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {where}" if where else f"{path}: ")
    assert problem in message


def test_missing_config_file(tmp_path):
    path = str(tmp_path / "absent.json")
    with pytest.raises(ConfigError, match=rf"^{re.escape(path)}: cannot read"):
        load_config_file(path)


# --- flags over file -------------------------------------------------------------------------------


def options(argv, tmp_path=None, file=None) -> Options:
    args = build_parser().parse_args(argv)
    return Options(args, load_config_file(write(tmp_path, file)) if file is not None else FileConfig())


def test_flags_override_the_file(tmp_path):
    merged = options(
        [
            "--port",
            "9000",
            "--default-backend",
            "local",
            "--health-interval",
            "500",
            "--controller",
            "http://c2:8880",
            "--backends",
            "xai:https://xai-proxy.example/v1:FLAGKEY,local:http://10.0.0.7:11434",
        ],
        tmp_path,
        SEED_CONFIG,
    )

    assert (merged.port, merged.default_backend, merged.health_interval_ms, merged.controller_url) == (
        9000,
        "local",
        500,
        "http://c2:8880",
    )
    by_name = {b.name: b for b in merged.backends}
    assert set(by_name) == {"xai", "anthropic", "ollama-remote", "groq", "local"}
    assert (by_name["xai"].url, by_name["xai"].api_key) == ("https://xai-proxy.example/v1", "FLAGKEY")
    assert by_name["anthropic"].kind == "anthropic"  # untouched file entries stay


def test_file_values_apply_without_flags(tmp_path):
    merged = options([], tmp_path, SEED_CONFIG)
    assert (merged.port, merged.default_backend, merged.health_interval_ms) == (8889, "xai", 60000)
    assert [b.name for b in merged.backends] == ["xai", "anthropic", "ollama-remote", "groq"]


def test_defaults_without_file_or_flags():
    merged = options([])
    assert (merged.port, merged.default_backend, merged.health_interval_ms, merged.backends) == (8889, "", 60000, [])


def test_merge_backends_takes_the_flag_definition():
    from_file = [BackendSpec("xai", "https://api.x.ai/v1", api_key="file"), BackendSpec("a", "https://a.example")]
    from_flags = [BackendSpec("xai", "https://api.x.ai/v1", api_key="flag")]
    assert [(b.name, b.api_key) for b in merge_backends(from_file, from_flags)] == [("xai", "flag"), ("a", "")]


def test_bad_flag_port_is_refused():
    with pytest.raises(ConfigError, match="--port"):
        options(["--port", "70000"])


def test_a_mistyped_api_key_is_not_echoed_in_the_error(tmp_path):
    config = tmp_path / "cloudd.json"
    config.write_text('{"backends": [{"name": "xai", "api_key": 123456789}]}')

    with pytest.raises(ConfigError) as caught:
        load_config_file(str(config))

    assert "backends[0].api_key: expected a string, got int" in str(caught.value)
    assert "123456789" not in str(caught.value)
