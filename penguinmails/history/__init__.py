"""The one transition log of every state machine (docs/states.md).

An app of its own because it is installed twice: in SHARED_APPS (the log of public objects:
tenants, VPS, IPs, mail servers, jobs) and in TENANT_APPS (the log of each tenant's objects:
domains, mailboxes, imports, campaigns, enrollments, messages), so a row lives in the same schema
as the object it describes and goes with it.
"""
