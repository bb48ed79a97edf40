"""Loopback stand-ins for Mailu (SMTP) used in dev and tests."""
