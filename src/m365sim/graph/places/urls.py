"""Places routes: ``/places/microsoft.graph.room`` before ``/places/{place_id}``."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.graph.places import responses
from m365sim.graph.routing import GRAPH_PREFIX

routes: list[BaseRoute] = [
    Route(f"{GRAPH_PREFIX}/places/microsoft.graph.room", responses.list_rooms, methods=["GET"]),
    Route(
        f"{GRAPH_PREFIX}/places/microsoft.graph.{{kind}}",
        responses.list_other_places,
        methods=["GET"],
    ),
    Route(f"{GRAPH_PREFIX}/places/{{place_id}}", responses.get_place, methods=["GET"]),
]
