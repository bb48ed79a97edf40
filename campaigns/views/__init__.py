"""Dashboard pages of the campaigns app: one module per area (thin; services do the work)."""
