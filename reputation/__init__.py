"""Reputation: DNS blocklist checks of IPs and domains, and the 0-100 score of each mailbox,
domain and IP with its history (docs/reputation.md)."""
