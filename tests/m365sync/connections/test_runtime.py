"""The connection runtime's process-wide share of Graph: one request budget per event loop."""

from __future__ import annotations

import asyncio

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crypto import SecretBox, generate_key
from m365sync.microsoft.graph import RequestBudget
from m365sync.settings import Settings


def test_one_request_budget_per_event_loop_caps_every_unit_on_it(settings: Settings) -> None:
    runtime = ConnectionRuntime(
        settings.model_copy(update={"sync_request_budget": 1}), SecretBox([generate_key()])
    )
    order: list[str] = []

    async def request(name: str, budget: RequestBudget) -> None:
        async with budget:
            order.append(f"{name} sent")
            await asyncio.sleep(0)  # the other unit runs now, if the budget lets it
            order.append(f"{name} answered")

    async def two_units() -> RequestBudget:
        first, second = runtime.request_budget(), runtime.request_budget()
        assert first is second
        await asyncio.gather(request("a", first), request("b", second))
        return first

    budget = asyncio.run(two_units())
    assert order == ["a sent", "a answered", "b sent", "b answered"]

    # The next command's event loop has a budget of its own, which works on it.
    order.clear()
    assert asyncio.run(two_units()) is not budget
    assert order == ["a sent", "a answered", "b sent", "b answered"]
