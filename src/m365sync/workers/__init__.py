"""Where sync units run: in-process (default) or Celery workers on Redis (scale-out).

``dispatch`` asks for a unit to run now (``InProcessSyncWorkers``, ``QueuedSyncWorkers``);
``celery_app`` is the Celery worker and its queue; ``process`` tunes a worker process.
"""
