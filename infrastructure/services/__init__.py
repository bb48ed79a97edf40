"""Business operations on VPS instances, IP addresses and mail servers. Views, API viewsets, job
handlers, admin actions and commands call these; nothing else writes these models."""
