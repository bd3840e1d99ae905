"""The sync engine: Email Sync, two-way Calendar Sync and Task Sync into the CRM.

``run_unit`` / ``sync_member`` is the one unit of work (``service``); the in-process
``Scheduler`` and the Celery tasks (``m365sync.workers``) call it.
"""
