"""Staff: the webhook tables live in tenant schemas, which the public admin does not read
(docs/webhooks.md); nothing is registered here until the admin can look into a tenant's schema
(issue 15 item 8). `manage.py` in a tenant's schema_context shows them meanwhile."""
