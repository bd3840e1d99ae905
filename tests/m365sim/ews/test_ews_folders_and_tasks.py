"""The folder tree over EWS (FindFolder, SyncFolderHierarchy) and To Do's tasks as the
Tasks folder."""

from __future__ import annotations

import httpx
from exchangelib import Task
from exchangelib.folders import Calendar, Inbox, Tasks

from support.ews_clients import AccountFactory


def test_the_folder_tree_and_its_classes(ews: AccountFactory) -> None:
    account = ews("diego@contoso.com")
    top = account.msg_folder_root
    names = {f.name: f for f in top.children}
    assert {"Inbox", "Sent Items", "Deleted Items", "Calendar", "Contacts", "Tasks"} <= set(names)
    assert isinstance(names["Inbox"], Inbox)
    assert isinstance(names["Calendar"], Calendar)
    assert isinstance(names["Tasks"], Tasks)
    assert names["Inbox"].total_count == 42
    assert names["Inbox"].unread_count == sum(
        1 for m in account.inbox.all().only("is_read") if not m.is_read
    )


def test_sync_folder_hierarchy_sees_a_new_folder(
    ews: AccountFactory, control: httpx.Client
) -> None:
    account = ews("diego@contoso.com")
    root = account.root
    first = list(root.sync_hierarchy())
    assert {kind for kind, _ in first} == {"create"}
    assert "Inbox" in {folder.name for _, folder in first}
    state = root.folder_sync_state
    account.inbox.refresh()
    from exchangelib.folders import Folder

    projects = Folder(parent=account.inbox, name="Projects")
    projects.save()
    changes = list(root.sync_hierarchy(sync_state=state))
    created = [folder.name for kind, folder in changes if kind == "create"]
    assert created == ["Projects"]


def test_tasks_are_to_do_tasks(ews: AccountFactory, control: httpx.Client) -> None:
    account = ews("adele@contoso.com")
    titles = sorted(t.subject for t in account.tasks.all())
    assert titles == ["Log the Northwind call notes", "Send the Fabrikam proposal"]
    task = Task(account=account, folder=account.tasks, subject="Call Kim back", importance="High")
    task.save()
    task.status = "Completed"
    task.save(update_fields=["status"])
    done = account.tasks.get(id=task.id)
    assert done.status == "Completed"
    assert done.is_complete is True
    done.delete()
    assert sorted(t.subject for t in account.tasks.all()) == titles
