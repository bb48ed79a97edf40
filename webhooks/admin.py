"""Staff: the webhook tables live in tenant schemas, which the public admin's model pages do not
read. Staff see a tenant's endpoints and recent deliveries read-only, each look audited, through
support access on the tenant's admin page (the panels are in webhooks/support.py)."""
