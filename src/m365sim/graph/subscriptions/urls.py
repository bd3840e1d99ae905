"""Graph's ``/v1.0/subscriptions`` routes (``routes``) and their ``/_sim`` controls
(``control_routes``)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.graph.routing import GRAPH_PREFIX
from m365sim.graph.subscriptions import responses

routes: list[BaseRoute] = [
    Route(f"{GRAPH_PREFIX}/subscriptions", responses.create_subscription, methods=["POST"]),
    Route(f"{GRAPH_PREFIX}/subscriptions", responses.list_subscriptions, methods=["GET"]),
    Route(
        f"{GRAPH_PREFIX}/subscriptions/{{subscription_id}}/reauthorize",
        responses.reauthorize_subscription,
        methods=["POST"],
    ),
    Route(
        f"{GRAPH_PREFIX}/subscriptions/{{subscription_id}}",
        responses.get_subscription,
        methods=["GET"],
    ),
    Route(
        f"{GRAPH_PREFIX}/subscriptions/{{subscription_id}}",
        responses.update_subscription,
        methods=["PATCH"],
    ),
    Route(
        f"{GRAPH_PREFIX}/subscriptions/{{subscription_id}}",
        responses.delete_subscription,
        methods=["DELETE"],
    ),
]

control_routes: list[BaseRoute] = [
    Route("/_sim/subscriptions", responses.sim_subscriptions, methods=["GET"]),
    Route(
        "/_sim/subscriptions/{subscription_id}/lifecycle", responses.sim_lifecycle, methods=["POST"]
    ),
    Route(
        "/_sim/notifications/settings",
        responses.sim_notification_settings,
        methods=["GET", "PATCH"],
    ),
    Route("/_sim/notifications", responses.sim_notifications, methods=["GET"]),
    Route("/_sim/notifications", responses.sim_clear_notifications, methods=["DELETE"]),
]
