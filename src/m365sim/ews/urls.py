"""EWS, Autodiscover and their control routes.

Exchange's paths are case-insensitive (IIS); the spellings clients use are registered.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.ews import control, responses

_EWS = ("/EWS/Exchange.asmx", "/ews/exchange.asmx", "/EWS/exchange.asmx", "/ews/Exchange.asmx")
_POX = ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml")
_SOAP = ("/autodiscover/autodiscover.svc", "/Autodiscover/Autodiscover.svc")

routes: list[BaseRoute] = [
    *(Route(path, responses.exchange_web_services, methods=["POST"]) for path in _EWS),
    *(Route(path, responses.autodiscover_pox, methods=["POST"]) for path in _POX),
    *(Route(path, responses.autodiscover_soap, methods=["POST"]) for path in _SOAP),
]

control_routes: list[BaseRoute] = [
    Route("/_sim/tenants/{tenant}/exchange", control.exchange_settings, methods=["GET", "PATCH"]),
    Route(
        "/_sim/tenants/{tenant}/exchange/impersonation",
        control.impersonation,
        methods=["GET", "POST"],
    ),
    Route(
        "/_sim/tenants/{tenant}/exchange/impersonation/{identity}",
        control.remove_impersonation,
        methods=["DELETE"],
    ),
]
