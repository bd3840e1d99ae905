"""Where sync units run: in-process (default) or Celery workers on Redis (scale-out)."""
