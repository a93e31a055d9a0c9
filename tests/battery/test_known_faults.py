"""The battery's cases with a known fault outside the gateway's parse layer, one strict xfail each.

A case here fails today for the reason given in ``KNOWN_FAULTS``; the day its cause is fixed it
passes, the strict xfail fails the run, and the entry is to be removed so the case rejoins the
battery proper. Runs last in the package, after everything else has had its go at the daemon.
"""

from __future__ import annotations

import pytest

from tests.battery import cases as c
from tests.battery import checks, rawclient
from tests.battery import raw_cases as r
from tests.battery.known_faults import KNOWN_FAULTS


@pytest.fixture(scope="module")
def json_cases() -> dict[str, c.JsonCase]:
    return {case.id: case for case in c.all_json_cases()}


@pytest.fixture(scope="module")
def raw_cases() -> dict[str, r.RawCase]:
    return {case.id: case for case in r.all_raw_cases()}


def _problem(battery, json_cases, raw_cases, case_id: str) -> str | None:
    json_case = json_cases.get(case_id)
    if json_case is not None:
        sender = checks.Sender(battery.url)
        try:
            answer = sender.send(json_case)
        finally:
            sender.close()
        problem = checks.judge(json_case, answer)
        return problem and checks.summary([(json_case, answer, problem)])
    raw_case = raw_cases.get(case_id)
    assert raw_case is not None, f"{case_id} is no longer a battery case: remove it from KNOWN_FAULTS"
    outcome = rawclient.send(battery.port, raw_case)
    problem = rawclient.judge(raw_case, outcome)
    return problem and rawclient.summary([(raw_case, outcome, problem)])


KNOWN = [
    pytest.param(case_id, marks=pytest.mark.xfail(strict=True, reason=why)) for case_id, why in KNOWN_FAULTS.items()
]


@pytest.mark.parametrize("case_id", KNOWN)
def test_known_fault(battery, json_cases, raw_cases, case_id):
    offset = battery.log_offset()
    problem = _problem(battery, json_cases, raw_cases, case_id)
    problems = battery.problems_since(offset)
    assert problem is None and not problems, "\n".join([problem or "", *problems])
