"""Brute-force protection for logins: failure budgets per account and per client address.

Each attempt reserves a slot (an atomic INCR, with the window's EXPIRE set in the same
MULTI/EXEC) *before* the password is checked. Twenty concurrent guesses therefore cannot all slip
past a limit of five: only the first five reservations are allowed to reach the password check,
whatever their timing. A success hands its slot back and clears the account's counter.

Counters are kept in Redis through a raw client on settings.REDIS_URL, outside the per-schema
cache namespace, so a budget is global: guessing on acme's host and on globex's host spends the
same one. Emails are hashed in key names so Redis holds no addresses, and unknown emails are
counted like real ones, so a lockout says nothing about whether an account exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

KEY_PREFIX = "pm:login-guard:"


@lru_cache(maxsize=4)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _client() -> redis.Redis:
    return _client_for(settings.REDIS_URL)


def account_key(email: str) -> str:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"{KEY_PREFIX}account:{digest}"


def ip_key(ip: str) -> str:
    return f"{KEY_PREFIX}ip:{ip}"


@dataclass(frozen=True)
class Reservation:
    """One login attempt's claim on the failure budgets; `allowed` says if it may proceed."""

    email: str
    ip: str
    allowed: bool


def reserve_attempt(*, email: str, ip: str) -> Reservation:
    """Count this attempt against both budgets and say whether the password may be checked."""
    window = int(settings.LOGIN_LOCKOUT_SECONDS)
    akey, ikey = account_key(email), ip_key(ip)
    pipe = _client().pipeline(transaction=True)
    # SET NX EX starts the window at the first failure and INCR keeps its expiry, so a locked
    # account unlocks LOGIN_LOCKOUT_SECONDS after its first counted failure. (Not EXPIRE NX:
    # that needs Redis 7, and the embedded Redis of `make run` is 6.2.)
    pipe.set(akey, 0, ex=window, nx=True)
    pipe.incr(akey)
    pipe.set(ikey, 0, ex=window, nx=True)
    pipe.incr(ikey)
    _, account_count, _, ip_count = pipe.execute()
    allowed = (
        int(account_count) <= settings.LOGIN_MAX_FAILURES_PER_ACCOUNT
        and int(ip_count) <= settings.LOGIN_MAX_FAILURES_PER_IP
    )
    return Reservation(email=email, ip=ip, allowed=allowed)


# Gives the address slot back only while its window lives: a bare DECR after expiry would create
# a key at -1 with no expiry, an everlasting bonus for that address.
_RELEASE = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end
return 1
"""


def record_success(reservation: Reservation) -> None:
    """The password was right: forget the account's failures and give back the address slot."""
    _client().eval(_RELEASE, 2, account_key(reservation.email), ip_key(reservation.ip))


def clear_account(email: str) -> None:
    """Lift the lockout on one account (after a password reset)."""
    _client().delete(account_key(email))


def failures(email: str) -> int:
    """How many attempts the account's current window has counted (for admin and tests)."""
    value = _client().get(account_key(email))
    return int(value) if value is not None else 0
