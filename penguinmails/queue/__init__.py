"""The durable priority job queue: PostgreSQL keeps the work, Redis and Celery make it fast.

Kept free of imports on purpose: `penguinmails.celery` imports `queue.queues` while settings
load, before Django's app registry exists. Use `penguinmails.queue.producer.enqueue`.
See docs/queue.md.
"""
