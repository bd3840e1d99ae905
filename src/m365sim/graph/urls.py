"""All Graph routes. ``$batch`` comes first so it is never shadowed by a ``{id}`` route."""

from __future__ import annotations

from starlette.routing import BaseRoute

from m365sim.graph.applications import urls as applications
from m365sim.graph.batch import urls as batch
from m365sim.graph.calendar import urls as calendar
from m365sim.graph.mail import urls as mail
from m365sim.graph.places import urls as places
from m365sim.graph.subscriptions import urls as subscriptions
from m365sim.graph.todo import urls as todo
from m365sim.graph.users import urls as users

routes: list[BaseRoute] = [
    *batch.routes,
    *subscriptions.routes,
    *mail.routes,
    *calendar.routes,
    *todo.routes,
    *places.routes,
    *users.routes,
    *applications.routes,
]
