"""Whether an address's domain can receive mail (the import's optional MX check)."""

from __future__ import annotations

import dns.exception
import dns.resolver

from deliverability.dns.verify import resolver_from_settings

_MX_CACHE_LIMIT = 10_000


class MxChecker:
    """Whether a domain can receive mail, asked of `DNS_RESOLVERS` once per domain per run.

    True: MX records (or, without any, an address record: RFC 5321's implicit MX). False: the
    domain does not exist, has no mail host, or publishes a null MX. None: DNS did not answer.
    """

    def __init__(self) -> None:
        self.resolver = resolver_from_settings()
        self.cache: dict[str, bool | None] = {}

    def __call__(self, domain: str) -> bool | None:
        if domain not in self.cache:
            if len(self.cache) >= _MX_CACHE_LIMIT:
                self.cache.clear()
            self.cache[domain] = self._ask(domain)
        return self.cache[domain]

    def _ask(self, domain: str) -> bool | None:
        try:
            answer = self.resolver.resolve(domain, "MX", raise_on_no_answer=False)
            hosts = [r.exchange.to_text().rstrip(".") for r in answer] if answer.rrset else []
            if hosts:
                return hosts != [""]  # `MX 0 .` is RFC 7505's "no mail here"
            address = self.resolver.resolve(domain, "A", raise_on_no_answer=False)
            return bool(address.rrset)
        except dns.resolver.NXDOMAIN:
            return False
        except dns.exception.DNSException:
            return None
