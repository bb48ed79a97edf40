"""REST API of the campaigns app: one module per resource (thin; services do the work)."""
