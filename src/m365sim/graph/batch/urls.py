from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.graph.batch import responses
from m365sim.graph.routing import GRAPH_PREFIX

routes: list[BaseRoute] = [
    Route(f"{GRAPH_PREFIX}/$batch", responses.batch, methods=["POST"]),
]
