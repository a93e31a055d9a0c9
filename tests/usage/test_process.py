"""The real ``eldric-cloudd``: the usage recorder is on, prices come from the seeded table,
and a graceful shutdown (SIGTERM) writes every request still queued."""

from __future__ import annotations

import sqlite3

import openai
import pytest

from tests.cli_process import GatewayProcess
from tests.fakes.server import openai_models
from tests.traffic.upstream import COMPLETION_TOKENS, chat_upstream

# The seeded list price of gpt-5.4 (USD per million tokens), for a backend named "openai".
INPUT, OUTPUT = 2.50, 15.00


def test_sigterm_writes_the_queued_usage_priced_from_the_seeded_table(fake_provider, tmp_path):
    fake = fake_provider("openai")
    fake.on("GET", "/v1/models", openai_models("gpt-5.4", "unlisted-model"))
    fake.on("POST", "/v1/chat/completions", chat_upstream("openai"))
    server = GatewayProcess(
        "--health-interval",
        "1000",
        "--backends",
        f"openai:{fake.url}/v1:sk-test-key-0001",
        data_dir=tmp_path,
        env={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'eldric.sqlite3'}",
            "REDIS_URL": "",
            "ELDRIC_MASTER_KEY": "",
            # Only the shutdown can write these records.
            "ELDRIC_USAGE_FLUSH_SECONDS": "3600",
        },
    ).start()
    prompts = [3, 40, 500]
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
        for n in prompts:
            client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": f"tokens:{n}"}])
        for _ in client.chat.completions.create(
            model="gpt-5.4", messages=[{"role": "user", "content": "tokens:9"}], stream=True
        ):
            pass
        client.chat.completions.create(model="unlisted-model", messages=[{"role": "user", "content": "tokens:4"}])
    finally:
        assert server.stop() == 0, server.logs()[-3000:]

    with sqlite3.connect(tmp_path / "eldric.sqlite3") as db:
        records = db.execute(
            "SELECT model, input_tokens, output_tokens, cost_nanos, unpriced FROM usage_usagerecord ORDER BY id"
        ).fetchall()
        days = db.execute(
            "SELECT model, requests, cost_nanos, unpriced_requests FROM usage_usageday ORDER BY model"
        ).fetchall()
    priced = [r for r in records if r[0] == "gpt-5.4"]
    assert [r[1] for r in priced] == [*prompts, 9]
    expected = sum(round((n * INPUT + COMPLETION_TOKENS * OUTPUT) * 1000) for n in [*prompts, 9])
    assert sum(r[3] for r in priced) == pytest.approx(expected, abs=len(priced))
    assert [r[3:] for r in records if r[0] == "unlisted-model"] == [(None, 1)]
    assert days == [("gpt-5.4", 4, sum(r[3] for r in priced), 0), ("unlisted-model", 1, 0, 1)]
