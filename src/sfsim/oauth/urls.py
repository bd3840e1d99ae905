from __future__ import annotations

from starlette.routing import BaseRoute, Route

from sfsim.oauth import responses

routes: list[BaseRoute] = [
    Route("/services/oauth2/token", responses.token, methods=["POST"]),
    Route("/services/oauth2/authorize", responses.authorize, methods=["GET", "POST"]),
    Route("/services/oauth2/revoke", responses.revoke, methods=["GET", "POST"]),
    Route("/services/oauth2/userinfo", responses.userinfo, methods=["GET", "POST"]),
    Route("/id/{org_id}/{user_id}", responses.identity, methods=["GET", "POST"]),
]
