from __future__ import annotations

from starlette.routing import BaseRoute, Route

from sfsim.control import responses

routes: list[BaseRoute] = [
    Route("/_sim/reset", responses.reset, methods=["POST"]),
    Route("/_sim/seed", responses.seed, methods=["POST"]),
    Route("/_sim/org", responses.org, methods=["GET"]),
    Route("/_sim/requests", responses.requests_log, methods=["GET"]),
    Route("/_sim/requests", responses.clear_requests_log, methods=["DELETE"]),
    Route("/_sim/clock", responses.clock, methods=["GET", "POST"]),
    Route("/_sim/config", responses.config, methods=["GET", "PATCH"]),
    Route("/_sim/sessions/expire", responses.expire_sessions, methods=["POST"]),
    Route("/_sim/records/{sobject}", responses.records, methods=["GET"]),
    Route("/_sim/leads/{lead_id}/convert", responses.convert_lead, methods=["POST"]),
]
