"""Business operations on tenants, users, roles, memberships and API keys.

Every write here is one named function: atomic, audited, side effects after commit. Views, the
API, admin actions and commands call these; none saves these models by hand.
"""
