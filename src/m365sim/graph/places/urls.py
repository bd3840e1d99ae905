"""Places routes: ``/places/microsoft.graph.room`` before ``/places/{place_id}``."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.graph.places import responses
from m365sim.graph.routing import GRAPH_PREFIX

# OData lets a type cast drop the ``microsoft.`` namespace alias: msgraph-sdk asks for
# ``/places/graph.room``, the documentation shows ``/places/microsoft.graph.room``.
routes: list[BaseRoute] = [
    *(
        Route(f"{GRAPH_PREFIX}/places/{prefix}room", responses.list_rooms, methods=["GET"])
        for prefix in ("microsoft.graph.", "graph.")
    ),
    *(
        Route(
            f"{GRAPH_PREFIX}/places/{prefix}{{kind}}",
            responses.list_other_places,
            methods=["GET"],
        )
        for prefix in ("microsoft.graph.", "graph.")
    ),
    Route(f"{GRAPH_PREFIX}/places/{{place_id}}", responses.get_place, methods=["GET"]),
]
