"""Malformed JSON requests to a running eldric-cloudd with a backend of each kind behind it.

Each test sends one family of generated cases (``tests/battery/cases.py``) over a few keep-alive
clients, judges every answer, and fails once at the end listing every case that went wrong.
Cases with a known fault outside the gateway are in ``KNOWN_FAULTS``: they run one by one in
``test_known_faults.py`` as strict xfails, so they stay visible and the day they are fixed the
battery says so.
"""

from __future__ import annotations

from tests.battery import cases as c
from tests.battery.checks import Sender, judge, summary
from tests.battery.known_faults import KNOWN_FAULTS
from tests.battery.raw_cases import all_raw_cases


def run(battery, cases: list[c.JsonCase]) -> None:
    cases = [case for case in cases if case.id not in KNOWN_FAULTS]
    offset = battery.log_offset()
    sender = Sender(battery.url)
    try:
        answers = sender.run(cases)
    finally:
        sender.close()
    failures = [(case, answer, problem) for case, answer in answers if (problem := judge(case, answer))]
    problems = battery.problems_since(offset)
    assert not failures and not problems, "\n".join([*problems, summary(failures)])


def test_the_battery_holds_at_least_5000_malformed_requests():
    assert len(c.all_json_cases()) + len(all_raw_cases()) >= 5000


def test_every_base_request_succeeds_on_every_backend_kind(battery):
    """The control: unaltered, the requests the cases are made from are answered 200."""
    sender = Sender(battery.url)
    try:
        chat = [sender.send(c.JsonCase(kind, c.CHAT_PATH, c.encode({**c.CHAT, "model": m}), c.WRONG_TYPE))
                for kind, m in c.CHAT_MODELS.items()]  # fmt: skip
        embeddings = [
            sender.send(c.JsonCase(kind, c.EMBEDDINGS_PATH, c.encode({**c.EMBEDDINGS, "model": m}), c.WRONG_TYPE))
            for kind, m in c.EMBEDDING_MODELS.items()
        ]
    finally:
        sender.close()
    assert [a.status for a in chat + embeddings] == [200] * 7, [a.body[:200] for a in chat + embeddings]


def test_wrong_typed_fields_are_400_naming_them(battery):
    run(battery, c.wrong_type_cases())


def test_wrong_typed_fields_in_streamed_requests_are_400_or_a_clean_stream(battery):
    run(battery, c.stream_cases())


def test_bad_utf8_and_lone_surrogates_are_400_naming_the_field(battery):
    run(battery, c.encoding_cases())


def test_deep_nesting_is_a_clean_answer(battery):
    run(battery, c.nesting_cases())


def test_broken_and_empty_bodies_are_400(battery):
    run(battery, c.broken_body_cases())


def test_the_management_api_refuses_bad_json_in_the_openai_shape(battery):
    run(battery, c.api_cases())


def test_bodies_over_the_limit_are_413(battery):
    run(battery, c.size_cases())


def test_wrong_methods_are_405_with_allow(battery):
    run(battery, c.method_cases())
