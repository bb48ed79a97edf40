"""REST API of deliverability: sending domains and mailboxes (thin; services do the work)."""
