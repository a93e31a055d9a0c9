"""Reads for usage and prices."""

from __future__ import annotations

from usage.models import DAY_COUNTERS
from usage.pricing import Price, PriceBook


def price_book_build() -> PriceBook:
    """Every ``ModelPrice`` row as the gateway's in-memory book (runs off the request path)."""
    from usage.models import ModelPrice

    return PriceBook(
        [
            Price.per_million(
                row.provider,
                row.model,
                input=row.input_per_million,
                output=row.output_per_million,
                cached_input=row.cached_input_per_million,
                reasoning=row.reasoning_per_million,
            )
            for row in ModelPrice.objects.all()
        ]
    )


# --- Usage ---------------------------------------------------------------------------------

GROUP_DIMENSIONS = ("day", "model", "backend", "key", "organisation")
_COUNTERS = DAY_COUNTERS


def _sums():
    from django.db.models import Sum

    return {name: Sum(name) for name in _COUNTERS}


def counters_format(values: dict) -> dict:
    """Summed counters as the API shows them: cost in USD, and whether any was unpriced."""
    from usage.models import NANOS_PER_USD

    out = {name: int(values.get(name) or 0) for name in _COUNTERS if name != "cost_nanos"}
    nanos = int(values.get("cost_nanos") or 0)
    out["cost_usd"] = round(nanos / NANOS_PER_USD, 9)
    # The cost above is of the priced requests only: flag it when some had no price.
    out["unpriced"] = out["unpriced_requests"] > 0
    return out


def usage_days_filter(*, organisation=None, key=None, model=None, backend=None, day_from=None, day_to=None):
    """``UsageDay`` rows matching the filters. ``key``: a key id (int) or an 8-character prefix."""
    from usage.models import UsageDay

    rows = UsageDay.objects.all()
    if organisation:
        rows = rows.filter(organisation=organisation)
    if isinstance(key, int):
        rows = rows.filter(key_ref=key)
    elif key:
        rows = rows.filter(key_prefix=key)
    if model:
        rows = rows.filter(model=model)
    if backend:
        rows = rows.filter(backend=backend)
    if day_from:
        rows = rows.filter(day__gte=day_from)
    if day_to:
        rows = rows.filter(day__lte=day_to)
    return rows


def usage_summary(*, group_by: tuple[str, ...] = (), max_groups: int = 10_000, **filters) -> dict:
    """Totals over the matching days and, with ``group_by``, one entry per group (ordered by
    the group's values)."""
    from django.db.models import Max

    rows = usage_days_filter(**filters)
    answer = {"totals": counters_format(rows.aggregate(**_sums()))}
    if not group_by:
        return answer
    columns = ["key_ref" if dim == "key" else dim for dim in group_by]
    groups = list(
        rows.values(*columns)
        .annotate(key_prefix_label=Max("key_prefix"), **_sums())
        .order_by(*columns)[: max_groups + 1]
    )
    answer["truncated"] = len(groups) > max_groups
    groups = groups[:max_groups]
    names = _key_names({g["key_ref"] for g in groups if g.get("key_ref")}) if "key" in group_by else {}
    data = []
    for group in groups:
        entry = {}
        for dim in group_by:
            if dim == "key":
                ref = group["key_ref"]
                entry["key"] = (
                    {"id": ref, "prefix": group["key_prefix_label"] or "", "name": names.get(ref, "")} if ref else None
                )
            elif dim == "day":
                entry["day"] = group["day"].isoformat()
            else:
                entry[dim] = group[dim]
        entry.update(counters_format(group))
        data.append(entry)
    answer["data"] = data
    return answer


def _key_names(ids: set[int]) -> dict[int, str]:
    from orgs.models import ClientKey

    return dict(ClientKey.objects.filter(id__in=ids).values_list("id", "name")) if ids else {}


def period_start(period: str, today):
    """The first day of the current budget period (UTC): today, or the first of the month."""
    return today if period == "day" else today.replace(day=1)


def budget_state(*, budget_usd, period: str, today, **filters) -> dict:
    """Spend in the current period from the usage records, and what remains of a budget."""
    start = period_start(period, today)
    totals = counters_format(usage_days_filter(day_from=start, day_to=today, **filters).aggregate(**_sums()))
    budget = None if budget_usd is None else float(budget_usd)
    return {
        "budget_usd": budget,
        "period": period,
        "period_start": start.isoformat(),
        "spent_usd": totals["cost_usd"],
        "remaining_usd": None if budget is None else round(max(0.0, budget - totals["cost_usd"]), 9),
        "unpriced_requests": totals["unpriced_requests"],
    }


def usage_totals(**filters) -> dict:
    return counters_format(usage_days_filter(**filters).aggregate(**_sums()))


def usage_self_report(
    *, organisation: str, key_id: int | None, key_limits, key_name: str, key_prefix: str, org_limits, today
) -> dict:
    """What ``GET /v1/usage`` answers: the current budget period's usage of a key (or, with
    ``key_id`` None, of the whole organisation), the budgets and what remains of them."""
    org_budget = getattr(org_limits, "budget_usd", None)
    org_period = getattr(org_limits, "budget_period", None) or "month"
    report = {
        "object": "usage",
        "organisation": {
            "slug": organisation,
            **budget_state(budget_usd=org_budget, period=org_period, today=today, organisation=organisation),
        },
    }
    scope = {"organisation": organisation}
    period = org_period
    if key_id is not None:
        period = getattr(key_limits, "budget_period", None) or "month"
        scope["key"] = key_id
        report["key"] = {
            "id": key_id,
            "name": key_name,
            "prefix": key_prefix,
            **budget_state(budget_usd=getattr(key_limits, "budget_usd", None), period=period, today=today, **scope),
        }
    start = period_start(period, today)
    summary = usage_summary(day_from=start, day_to=today, group_by=("model",), **scope)
    report["period"] = {"kind": period, "start": start.isoformat(), "end": today.isoformat()}
    report["usage"] = summary["totals"]
    report["by_model"] = summary["data"]
    report["all_time"] = usage_totals(**scope)
    return report
