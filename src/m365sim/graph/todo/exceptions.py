"""Microsoft To Do errors (the shared Graph ones live in ``m365sim.graph.exceptions``).

::

    GraphError
    ├── TodoInvalidRequest       400 invalidRequest (malformed task or list)
    ├── DefaultListUndeletable   400 invalidRequest deleting the default "Tasks" list
    ├── TaskListNotFound         404 ErrorItemNotFound
    └── TaskNotFound             404 ErrorItemNotFound
"""

from __future__ import annotations

from m365sim.exceptions import GraphError

__all__ = ["DefaultListUndeletable", "TaskListNotFound", "TaskNotFound", "TodoInvalidRequest"]


class TodoInvalidRequest(GraphError):
    status = 400
    code = "invalidRequest"
    message = "Invalid request."


class DefaultListUndeletable(GraphError):
    status = 400
    code = "invalidRequest"
    message = "The default task list cannot be deleted."


class TaskListNotFound(GraphError):
    status = 404
    code = "ErrorItemNotFound"
    message = "The specified object was not found in the store."


class TaskNotFound(GraphError):
    status = 404
    code = "ErrorItemNotFound"
    message = "The specified object was not found in the store."
