"""Malformed HTTP on bare sockets to the running eldric-cloudd: smuggling, garbage request lines,
oversized headers and bodies, wrong methods, bodies cut short.

The server may refuse such a request itself (a 400 of its own) or close the connection; it may
never answer with a 500, never hang past the timeouts, never answer a smuggled request, and the
gateway's own error answers stay in OpenAI's shape.
"""

from __future__ import annotations

from tests.battery import raw_cases as r
from tests.battery import rawclient
from tests.battery.known_faults import KNOWN_FAULTS


def run(battery, cases: list[r.RawCase]) -> None:
    cases = [case for case in cases if case.id not in KNOWN_FAULTS]
    offset = battery.log_offset()
    outcomes = rawclient.run(battery.port, cases)
    failures = [(case, outcome, problem) for case, outcome in outcomes if (problem := rawclient.judge(case, outcome))]
    problems = battery.problems_since(offset)
    assert not failures and not problems, "\n".join([*problems, rawclient.summary(failures)])


def test_smuggling_is_refused_or_answered_once(battery):
    run(battery, r.framing_cases())


def test_malformed_and_oversized_headers_are_refused_cleanly(battery):
    run(battery, r.header_cases())


def test_garbage_request_lines_are_refused_cleanly(battery):
    run(battery, r.request_line_cases())


def test_wrong_methods_are_405_with_allow_on_the_wire(battery):
    run(battery, r.method_cases())


def test_oversized_and_cut_short_bodies_end_cleanly(battery):
    run(battery, r.body_cases())
