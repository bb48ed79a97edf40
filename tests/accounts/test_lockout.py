from __future__ import annotations

import threading
import time

from django.contrib.auth.signals import user_login_failed
from django.db import connection
from django.test import Client, override_settings

from tenants.services import login_guard
from tenants.services.accounts import LOGIN_REFUSED_MESSAGE
from tests.conftest import PASSWORD, Cast

REFUSED = LOGIN_REFUSED_MESSAGE.encode()


def _post_login(email: str, password: str, *, ip: str = "127.0.0.1", slug: str = "acme"):
    client = Client(HTTP_HOST=f"{slug}.localhost", REMOTE_ADDR=ip)
    return client.post("/login/", {"email": email, "password": password})


def _concurrent_wrong_passwords(email: str, count: int) -> list[int]:
    statuses: list[int] = []
    barrier = threading.Barrier(count)

    def attempt() -> None:
        try:
            barrier.wait(timeout=30)
            statuses.append(_post_login(email, "wrong-password-xyz").status_code)
        finally:
            # Each thread opened its own database connection; close it for the teardown.
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


@override_settings(LOGIN_MAX_FAILURES_PER_ACCOUNT=5, LOGIN_LOCKOUT_SECONDS=120)
def test_it_locks_an_account_under_concurrent_guessing(cast: Cast) -> None:
    email = cast.viewer.email
    checked: list[str] = []

    def on_failed(sender: object, credentials: dict, **kwargs: object) -> None:
        checked.append(credentials.get("email", ""))

    # Django signals every password check that fails: with the budget reserved before the
    # check, only 5 of the 20 simultaneous guesses may reach it.
    user_login_failed.connect(on_failed, dispatch_uid="lockout-test")
    try:
        statuses = _concurrent_wrong_passwords(email, 20)
    finally:
        user_login_failed.disconnect(dispatch_uid="lockout-test")
    assert statuses == [200] * 20
    assert login_guard.failures(email) == 20
    assert len(checked) == 5

    locked = _post_login(email, PASSWORD)
    assert locked.status_code == 200
    assert REFUSED in locked.content
    # Another address does not help: the account budget is per account.
    assert REFUSED in _post_login(email, PASSWORD, ip="10.1.2.3").content


@override_settings(LOGIN_MAX_FAILURES_PER_ACCOUNT=1, LOGIN_LOCKOUT_SECONDS=3)
def test_it_unlocks_when_the_window_ends(cast: Cast) -> None:
    email = cast.viewer.email
    assert REFUSED in _post_login(email, "wrong-password-xyz").content
    assert REFUSED in _post_login(email, PASSWORD).content
    # Wait for Redis to expire the window (it started at the first failure).
    deadline = time.monotonic() + 10
    while login_guard.failures(email) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert login_guard.failures(email) == 0
    assert _post_login(email, PASSWORD).status_code == 302


@override_settings(LOGIN_MAX_FAILURES_PER_ACCOUNT=3)
def test_it_lets_exactly_the_budget_through_before_locking(cast: Cast) -> None:
    email = cast.member.email
    for _ in range(2):
        assert REFUSED in _post_login(email, "wrong-password-xyz").content
    # The third attempt is still within the budget, so the right password works...
    assert _post_login(email, PASSWORD).status_code == 302
    # ...and a success wipes the failures.
    assert login_guard.failures(email) == 0
    for _ in range(3):
        _post_login(email, "wrong-password-xyz")
    assert REFUSED in _post_login(email, PASSWORD).content


@override_settings(LOGIN_MAX_FAILURES_PER_ACCOUNT=2)
def test_it_counts_unknown_emails_and_answers_them_identically(cast: Cast) -> None:
    unknown = [_post_login("ghost@acme.test", "whatever-123") for _ in range(3)]
    known = [_post_login(cast.admin.email, "whatever-123") for _ in range(3)]
    assert login_guard.failures("ghost@acme.test") == 3
    assert {r.status_code for r in unknown + known} == {200}
    for response in unknown + known:
        assert response.context["form"].non_field_errors() == [LOGIN_REFUSED_MESSAGE]


@override_settings(LOGIN_MAX_FAILURES_PER_IP=3)
def test_it_limits_failures_per_client_address(cast: Cast) -> None:
    for n in range(3):
        _post_login(f"spray{n}@acme.test", "whatever-123", ip="10.9.8.7")
    assert REFUSED in _post_login(cast.admin.email, PASSWORD, ip="10.9.8.7").content
    assert _post_login(cast.admin.email, PASSWORD, ip="10.9.8.8").status_code == 302


@override_settings(LOGIN_MAX_FAILURES_PER_ACCOUNT=2)
def test_it_shares_one_budget_across_hosts(cast: Cast) -> None:
    _post_login(cast.outsider.email, "wrong-password-xyz", slug="globex")
    _post_login(cast.outsider.email, "wrong-password-xyz", slug="acme")
    # Both failures counted against the one global account budget, whatever the host.
    assert login_guard.failures(cast.outsider.email) == 2
    assert REFUSED in _post_login(cast.outsider.email, PASSWORD, slug="globex").content
