"""Loopback stand-ins for Mailu (SMTP, IMAP via a private Dovecot) and DNS used in dev and tests."""
