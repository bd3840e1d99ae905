"""To Do operations on a ``SimState``: the store's rules plus the change feed.

Every task mutation publishes a ``Change`` (resource ``todoTask``, folder = list id), so
subscriptions see To Do like they see mail and events.
"""

from __future__ import annotations

from typing import Any

from m365sim.directory.models import Tenant, User
from m365sim.graph.todo.models import TodoStore, TodoTask
from m365sim.state import Change, SimState

__all__ = ["TodoBackend"]


class TodoBackend:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def store(self, tenant: Tenant, user: User) -> TodoStore:
        return self.state.store(tenant, user, "todo", lambda: TodoStore(self.state.now()))

    def _publish(self, tenant: Tenant, user: User, change_type: str, task: TodoTask) -> None:
        self.state.publish(
            Change(
                tenant_id=tenant.id,
                user_id=user.id,
                resource="todoTask",
                change_type=change_type,
                item_id=task.id,
                folder_id=task.list_id,
            )
        )

    def create_task(
        self, tenant: Tenant, user: User, list_id: str, body: dict[str, Any]
    ) -> TodoTask:
        task = self.store(tenant, user).add_task(list_id, body, self.state.now())
        self._publish(tenant, user, "created", task)
        return task

    def update_task(
        self, tenant: Tenant, user: User, list_id: str, task_id: str, body: dict[str, Any]
    ) -> TodoTask:
        task = self.store(tenant, user).update_task(list_id, task_id, body, self.state.now())
        self._publish(tenant, user, "updated", task)
        return task

    def delete_task(self, tenant: Tenant, user: User, list_id: str, task_id: str) -> TodoTask:
        task = self.store(tenant, user).delete_task(list_id, task_id)
        self._publish(tenant, user, "deleted", task)
        return task
