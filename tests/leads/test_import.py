"""CSV imports through the job: mapping, custom fields, duplicates, bad rows with their lines,
suppressed rows, progress counts, resumption, the errors CSV and the MX check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django_tenants.utils import schema_context

from campaigns.models import ImportStatus, LeadImportError
from campaigns.services.leads import import_errors_csv
from penguinmails.models import Job, JobStatus
from penguinmails.sandbox.dns import SandboxDnsServer, ZoneRecord, ZoneStore, start_sandbox_dns
from tests.conftest import Cast
from tests.leads.conftest import (
    csv_bytes,
    import_in,
    leads_in,
    principal,
    run_jobs,
    suppress,
    upload,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Semicolons (a European spreadsheet's CSV), a BOM, a quoted field over two lines (line 4-5),
# an unknown column (Deal Size) and a renamed one (E-mail).
MIXED = (
    "E-mail;First Name;Surname;Company;Deal Size;Time zone;Tags\n"  # line 1
    "Ann@Example.com;Ann;Lee;Acme;100;Europe/Paris;vip, q3\n"  # 2: created
    "not-an-address;Bob;;;;;\n"  # 3: failed
    'carl@example.org;Carl;Diaz;"Big\nCo";;;\n'  # 4-5: created (company spans two lines)
    "ann@example.com;Annie;;;250;;new\n"  # 6: duplicate of line 2
    "info@example.net;;;;;;\n"  # 7: created, a role address
    "dora@example.com;Dora;;;;Mars/Olympus;\n"  # 8: failed (time zone)
    "\n"  # 9: blank, not a row
    "eve@blocked.example;Eve;;;;;\n"  # 10: suppressed domain
    "fred@mailinator.com;Fred;;;;;\n"  # 11: created, disposable
    "gus@example.com;Gus;;;;;\n"  # 12: suppressed address
)


def test_it_imports_a_csv_with_mapping_custom_fields_duplicates_and_bad_rows(cast: Cast) -> None:
    suppress(cast, "blocked.example")
    suppress(cast, "GUS@example.com", reason="bounced")
    lead_import = upload(cast, csv_bytes(MIXED, bom=True), list_name="Webinar")
    assert lead_import.delimiter == ";"
    assert lead_import.mapping["E-mail"] == "email"
    assert lead_import.mapping["Deal Size"] == "custom:deal_size"
    job = Job.objects.get(pk=lead_import.job_id)
    assert job.task == "leads.import" and job.tenant_id == cast.tenant.pk
    run_jobs()
    assert Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED
    done = import_in(cast, lead_import.pk)
    assert done.status == ImportStatus.COMPLETED
    assert (done.total_rows, done.processed) == (9, 9)
    assert (done.created, done.updated, done.skipped, done.failed) == (4, 1, 2, 2)
    leads = leads_in(cast)
    assert set(leads) == {
        "ann@example.com",
        "carl@example.org",
        "info@example.net",
        "fred@mailinator.com",
    }
    ann = leads["ann@example.com"]
    # The duplicate row updated Ann: non-empty values win, custom fields merge, tags add up.
    assert (ann.first_name, ann.last_name, ann.company) == ("Annie", "Lee", "Acme")
    assert ann.custom_fields == {"deal_size": "250"}
    assert ann.tags == ["vip", "q3", "new"]
    assert ann.timezone == "Europe/Paris"
    assert leads["carl@example.org"].company == "Big\nCo"
    assert leads["info@example.net"].is_role_address
    assert leads["fred@mailinator.com"].is_disposable
    assert not ann.is_role_address and not ann.is_disposable and ann.mx_ok is None
    assert all([lst.name for lst in lead.lists.all()] == ["Webinar"] for lead in leads.values())
    with schema_context(cast.tenant.schema_name):
        rows = list(LeadImportError.objects.filter(lead_import=done).values_list("line", "outcome"))
        csv_text = "".join(import_errors_csv(principal(cast.tenant, cast.viewer), done))
    assert rows == [(3, "failed"), (8, "failed"), (10, "skipped"), (12, "skipped")]
    lines = csv_text.splitlines()
    assert lines[0] == "line,email,outcome,reason"
    assert lines[1].startswith("3,not-an-address,failed,email: ")
    assert lines[2].startswith("8,dora@example.com,failed,timezone: Unknown time zone")
    assert "suppressed domain (unsubscribed)" in lines[3]
    assert "suppressed address (hard bounce)" in lines[4]


def test_it_skips_duplicates_when_asked(cast: Cast) -> None:
    first = upload(cast, csv_bytes("email,first_name\nann@example.com,Ann\n"))
    run_jobs()
    again = upload(
        cast,
        csv_bytes("email,first_name\nANN@example.com,Changed\nbo@example.com,Bo\n"),
        duplicates="skip",
    )
    run_jobs()
    done = import_in(cast, again.pk)
    assert (done.created, done.updated, done.skipped, done.failed) == (1, 0, 1, 0)
    assert leads_in(cast)["ann@example.com"].first_name == "Ann"
    assert import_in(cast, first.pk).created == 1


@pytest.mark.parametrize("odd", ["", "\x01", "\x02", "\x03"])
def test_it_stores_backslashes_tabs_line_breaks_and_control_characters_as_written(
    cast: Cast, odd: str
) -> None:
    # The staging COPY text escapes them (`_copy_text`); a cell holding one of its separators
    # sends the batch field by field instead.
    company = f"A\\B\tC\r\nD{odd}"
    data = (
        "email,company,Deal Size,tags\n"
        f'ann@example.com,"{company}",\\N,"x\\y, z"\n'
        'bo@example.com,,"say ""hi""\n\tthere",\n'
    )
    lead_import = upload(cast, csv_bytes(data))
    run_jobs()
    done = import_in(cast, lead_import.pk)
    assert (done.status, done.created, done.failed) == (ImportStatus.COMPLETED, 2, 0)
    leads = leads_in(cast)
    ann, bo = leads["ann@example.com"], leads["bo@example.com"]
    assert (ann.company, ann.custom_fields, ann.tags) == (
        company,
        {"deal_size": "\\N"},
        ["x\\y", "z"],
    )
    assert (bo.company, bo.custom_fields, bo.tags) == ("", {"deal_size": 'say "hi"\n\tthere'}, [])
    assert (ann.is_role_address, ann.is_disposable, ann.mx_ok) == (False, False, None)


def test_it_counts_progress_batch_by_batch_and_resumes_after_the_last_batch(
    cast: Cast, settings: Any
) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 7
    body = "email,company\n" + "".join(f"p{n}@example.com,Co {n}\n" for n in range(30))
    lead_import = upload(cast, csv_bytes(body))
    seen: list[tuple[int, int]] = []
    from campaigns.services.lead_import import run_import

    with schema_context(cast.tenant.schema_name):
        run_import(
            lead_import.pk,
            tenant=cast.tenant,
            on_progress=lambda i: seen.append((i.processed, i.total_rows or 0)),
        )
    assert seen[:6] == [(0, 30), (7, 30), (14, 30), (21, 30), (28, 30), (30, 30)]
    done = import_in(cast, lead_import.pk)
    assert done.percent == 100 and done.created == 30
    # The queued job then finds it finished and changes nothing.
    run_jobs()
    assert import_in(cast, lead_import.pk).created == 30
    assert len(leads_in(cast)) == 30


def test_it_resumes_a_half_done_import_without_counting_twice(cast: Cast, settings: Any) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 5
    body = "email\n" + "".join(f"r{n}@example.com\n" for n in range(12))
    lead_import = upload(cast, csv_bytes(body))
    from campaigns.services.lead_import import run_import

    class Killed(Exception):
        pass

    def die_after_first_batch(i: Any) -> None:
        if i.processed == 5:
            raise Killed

    with schema_context(cast.tenant.schema_name), pytest.raises(Killed):
        run_import(lead_import.pk, tenant=cast.tenant, on_progress=die_after_first_batch)
    half = import_in(cast, lead_import.pk)
    # Two writers: the second batch, written beside the first, may have committed before the
    # first was reported. Either way a prefix of whole batches, counted once.
    assert half.status == "running" and half.processed in (5, 10)
    assert half.created == half.processed == len(leads_in(cast))
    run_jobs()
    done = import_in(cast, lead_import.pk)
    assert (done.status, done.processed, done.created, done.skipped) == ("completed", 12, 12, 0)


def test_it_fails_an_import_whose_file_breaks_past_the_upload_check(
    cast: Cast, settings: Any
) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 1000
    # Past the first 64 KB read at upload, so the upload itself looks fine.
    good = "".join(f"a{n:06d}@example.com\n" for n in range(4000)).encode()
    body = b"email\n" + good + b"c\xff@example.com\n"
    lead_import = upload(cast, body)
    run_jobs()
    done = import_in(cast, lead_import.pk)
    assert done.status == ImportStatus.FAILED
    assert "not UTF-8" in done.error_message
    # The counting pass reads the whole file first, so nothing of it was imported.
    assert done.processed == 0 and leads_in(cast) == {}


def test_it_refuses_an_unusable_file_and_stores_nothing(cast: Cast) -> None:
    from penguinmails.errors import ValidationFailed

    for bad, why in [
        (b"", "empty"),
        (b"name,company\nAnn,Acme\n", "email"),
        (b"email,email\nx@example.com,y\n", "unique"),
        ("email\nx@example.com\n".encode("utf-16"), "UTF-8"),
    ]:
        with pytest.raises(ValidationFailed, match=why):
            upload(cast, bad)
    with pytest.raises(ValidationFailed, match="unknown field"):
        upload(cast, b"email,x\na@example.com,1\n", mapping={"x": "salary"})
    with schema_context(cast.tenant.schema_name):
        from campaigns.models import LeadImport

        assert LeadImport.objects.count() == 0
    assert not Job.objects.filter(task="leads.import").exists()


@pytest.fixture
def dns_server(tmp_path: Path, settings: Any) -> Any:
    server = start_sandbox_dns("127.0.0.1", 0, ZoneStore(tmp_path / "zones.json"))
    settings.DNS_RESOLVERS = [server.nameserver]
    settings.DNS_TIMEOUT = 2
    yield server
    server.stop()


def test_it_checks_mx_records_against_dns_when_asked(
    cast: Cast, dns_server: SandboxDnsServer
) -> None:
    dns_server.store.add(
        ZoneRecord.make("mail-ok.example", "MX", "mx.mail-ok.example", priority=10)
    )
    dns_server.store.add(ZoneRecord.make("a-only.example", "A", "127.0.0.1"))
    body = "email\nx@mail-ok.example\ny@a-only.example\nz@nowhere.example\n"
    upload(cast, csv_bytes(body), check_mx=True)
    run_jobs()
    leads = leads_in(cast)
    assert leads["x@mail-ok.example"].mx_ok is True
    assert leads["y@a-only.example"].mx_ok is True
    assert leads["z@nowhere.example"].mx_ok is False


def _errors(cast: Cast, import_id: int) -> list[tuple[int, str, str, str]]:
    with schema_context(cast.tenant.schema_name):
        return list(
            LeadImportError.objects.filter(lead_import_id=import_id)
            .order_by("line")
            .values_list("line", "email", "outcome", "reason")
        )


def test_it_reports_repeated_addresses_in_the_file_as_skipped_with_their_line(
    cast: Cast, settings: Any
) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 3  # line 5 repeats line 2 across a batch boundary
    suppress(cast, "zed@example.com")
    body = (
        "email,first_name,tags\n"
        "ann@example.com,Ann,a\n"  # 2: created
        "ANN@example.com,Annie,b\n"  # 3: repeat within the batch
        "bo@example.com,Bo,\n"  # 4: created
        "ann@example.com,Anna,c\n"  # 5: repeat, in the next batch
        "zed@example.com,Zed,\n"  # 6: suppressed
        "zed@example.com,Zed,\n"  # 7: suppressed again
    )
    skip = upload(cast, csv_bytes(body), duplicates="skip", list_name="Fair")
    run_jobs()
    done = import_in(cast, skip.pk)
    assert (done.created, done.updated, done.skipped, done.failed) == (2, 0, 4, 0)
    assert _errors(cast, skip.pk) == [
        (3, "ann@example.com", "skipped", "duplicate of line 2"),
        (5, "ann@example.com", "skipped", "duplicate: the lead exists"),
        (6, "zed@example.com", "skipped", "suppressed address (unsubscribed)"),
        (7, "zed@example.com", "skipped", "suppressed address (unsubscribed)"),
    ]
    leads = leads_in(cast)
    assert set(leads) == {"ann@example.com", "bo@example.com"}
    assert (leads["ann@example.com"].first_name, leads["ann@example.com"].tags) == ("Ann", ["a"])
    assert all([x.name for x in lead.lists.all()] == ["Fair"] for lead in leads.values())


def test_it_merges_repeated_addresses_by_the_update_policy_within_and_across_batches(
    cast: Cast, settings: Any
) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 3
    first = upload(cast, csv_bytes("email,company,Plan\nann@example.com,Acme,free\n"))
    run_jobs()
    body = (
        "email,first_name,company,tags,Plan,Seats\n"
        "ann@example.com,Ann,,x,,\n"  # 2: updates the lead from the first import
        "ann@example.com,,Acme 2,y,pro,\n"  # 3: merged into line 2
        "cy@example.com,Cy,,,,\n"  # 4: created
        "ANN@example.com,Annie,,x;z,,5\n"  # 5: next batch: updates again
    )
    again = upload(cast, csv_bytes(body))
    run_jobs()
    done = import_in(cast, again.pk)
    assert (done.created, done.updated, done.skipped, done.failed) == (1, 3, 0, 0)
    assert _errors(cast, again.pk) == []
    ann = leads_in(cast)["ann@example.com"]
    assert (ann.first_name, ann.company, ann.tags) == ("Annie", "Acme 2", ["x", "y", "z"])
    assert ann.custom_fields == {"plan": "pro", "seats": "5"}
    assert import_in(cast, first.pk).created == 1


def test_it_skips_suppressed_domains_and_addresses_whatever_their_case(cast: Cast) -> None:
    suppress(cast, "Blocked.example", reason="complaint")
    suppress(cast, "amy@ok.example", reason="bounced")
    body = "email\nAMY@ok.example\nbob@BLOCKED.example\ncat@ok.example\n"
    lead_import = upload(cast, csv_bytes(body))
    run_jobs()
    done = import_in(cast, lead_import.pk)
    assert (done.created, done.skipped) == (1, 2)
    assert [(line, reason) for line, _, _, reason in _errors(cast, lead_import.pk)] == [
        (2, "suppressed address (hard bounce)"),
        (3, "suppressed domain (spam complaint)"),
    ]
    assert set(leads_in(cast)) == {"cat@ok.example"}


def test_it_resumes_after_a_crash_inside_a_batch_without_half_a_batch(
    cast: Cast, settings: Any
) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 4
    body = "email\n" + "".join(f"k{n}@example.com\n" for n in range(10)) + "bad\n"
    lead_import = upload(cast, csv_bytes(body))
    from django.db import DatabaseError, connection

    from campaigns.services.lead_import import run_import

    # A real failure in the database, after batch 2 has written its leads and before its
    # transaction commits: its counts update raises.
    with schema_context(cast.tenant.schema_name), connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION fail_import() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER fail_import BEFORE UPDATE ON campaigns_leadimport FOR EACH ROW "
            "WHEN (NEW.processed = 8) EXECUTE FUNCTION fail_import()"
        )
    with schema_context(cast.tenant.schema_name), pytest.raises(DatabaseError, match="disk"):
        run_import(lead_import.pk, tenant=cast.tenant)
    with schema_context(cast.tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER fail_import ON campaigns_leadimport")
        cursor.execute("DROP FUNCTION fail_import()")
    half = import_in(cast, lead_import.pk)
    assert (half.status, half.processed, half.created) == ("running", 4, 4)
    assert len(leads_in(cast)) == 4  # batch 2 rolled back whole
    run_jobs()
    done = import_in(cast, lead_import.pk)
    assert (done.status, done.processed, done.created, done.failed) == ("completed", 11, 10, 1)
    assert [line for line, *_ in _errors(cast, lead_import.pk)] == [12]


def test_it_fails_an_import_when_the_reader_thread_meets_a_broken_row(
    cast: Cast, settings: Any
) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 1000
    good = "".join(f"t{n:06d}@example.com\n" for n in range(4000)).encode()
    lead_import = upload(cast, b"email\n" + good + b"c\xff@example.com\n")
    from campaigns.models import LeadImport
    from campaigns.services.lead_import import run_import

    # As if counted by an earlier run: the reader thread is the first to meet the bad bytes.
    with schema_context(cast.tenant.schema_name):
        LeadImport.objects.filter(pk=lead_import.pk).update(total_rows=4001)
        run_import(lead_import.pk, tenant=cast.tenant)
    done = import_in(cast, lead_import.pk)
    assert done.status == ImportStatus.FAILED and "not UTF-8" in done.error_message
    # The batches before the bad one committed; the error is raised at the batch it broke.
    assert (done.processed, done.created) == (3000, 3000)


def _fail_when(cast: Cast, condition: str, *, errcode: str = "P0001") -> None:
    """A trigger on the import row's counts update: a failure inside a batch's transaction."""
    from django.db import connection

    with schema_context(cast.tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE IF NOT EXISTS fail_import_seen")
        cursor.execute(
            "CREATE FUNCTION fail_import() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN IF {condition} THEN "
            f"RAISE EXCEPTION 'injected failure' USING ERRCODE = '{errcode}'; "
            "END IF; RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER fail_import BEFORE UPDATE ON campaigns_leadimport FOR EACH ROW "
            "EXECUTE FUNCTION fail_import()"
        )


def _stop_failing(cast: Cast) -> None:
    from django.db import connection

    with schema_context(cast.tenant.schema_name), connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER fail_import ON campaigns_leadimport")
        cursor.execute("DROP FUNCTION fail_import()")


@pytest.mark.parametrize(
    ("failing", "writer"),
    [(1, "the second writer (a thread)"), (2, "the job's own connection")],
)
def test_it_rolls_back_the_batches_after_a_failed_one_whichever_writer_fails(
    cast: Cast, settings: Any, failing: int, writer: str
) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 4
    body = "email\n" + "".join(f"w{n}@example.com\n" for n in range(22))
    lead_import = upload(cast, csv_bytes(body))
    from django.db import DatabaseError

    from campaigns.services.lead_import import run_import

    # Batches alternate between the writers: 0, 2, 4 on the job's connection, 1, 3, 5 on the
    # second. Batch `failing` fails as it commits; the one written beside it must not commit.
    _fail_when(cast, f"NEW.processed = {4 * (failing + 1)}")
    with schema_context(cast.tenant.schema_name), pytest.raises(DatabaseError, match="injected"):
        run_import(lead_import.pk, tenant=cast.tenant)
    _stop_failing(cast)
    half = import_in(cast, lead_import.pk)
    assert (half.status, half.processed, half.created) == ("running", 4 * failing, 4 * failing)
    assert len(leads_in(cast)) == 4 * failing, writer
    assert _errors(cast, lead_import.pk) == []
    run_jobs()
    done = import_in(cast, lead_import.pk)
    assert (done.status, done.processed, done.created, done.skipped) == ("completed", 22, 22, 0)


def test_it_writes_a_deadlocked_batch_again_one_at_a_time(cast: Cast, settings: Any) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 4
    body = "email\n" + "".join(f"d{n}@example.com\n" for n in range(22)) + "bad\n"
    lead_import = upload(cast, csv_bytes(body))
    from campaigns.services.lead_import import run_import

    # PostgreSQL's deadlock error (40P01) once, in the third batch.
    _fail_when(cast, "NEW.processed = 12 AND nextval('fail_import_seen') = 1", errcode="40P01")
    seen: list[int] = []
    with schema_context(cast.tenant.schema_name):
        run_import(
            lead_import.pk, tenant=cast.tenant, on_progress=lambda i: seen.append(i.processed)
        )
    _stop_failing(cast)
    done = import_in(cast, lead_import.pk)
    assert (done.status, done.processed, done.created, done.failed) == ("completed", 23, 22, 1)
    assert seen == [0, 4, 8, 12, 16, 20, 23, 23]  # each batch reported once, in order
    assert [line for line, *_ in _errors(cast, lead_import.pk)] == [24]


def test_it_fails_a_batch_that_deadlocks_twice(cast: Cast, settings: Any) -> None:
    settings.LEAD_IMPORT_BATCH_SIZE = 4
    body = "email\n" + "".join(f"e{n}@example.com\n" for n in range(22))
    lead_import = upload(cast, csv_bytes(body))
    from django.db import OperationalError

    from campaigns.services.lead_import import run_import

    _fail_when(cast, "NEW.processed = 12", errcode="40P01")
    with schema_context(cast.tenant.schema_name), pytest.raises(OperationalError):
        run_import(lead_import.pk, tenant=cast.tenant)
    _stop_failing(cast)
    half = import_in(cast, lead_import.pk)
    assert (half.status, half.processed, half.created) == ("running", 8, 8)


@pytest.mark.parametrize("duplicates", ["update", "skip"])
def test_it_applies_repeats_across_many_batches_in_file_order(
    cast: Cast, settings: Any, duplicates: str
) -> None:
    """Two writers, ten batches, every batch repeating the addresses of the one before: the
    outcome is the sequential one (later values win in file order, tags add up in order)."""
    settings.LEAD_IMPORT_BATCH_SIZE = 20
    rows = [(f"u{n % 15}@example.com", f"n{n}", f"t{n // 20}") for n in range(200)]
    body = "email,first_name,tags\n" + "".join(f"{e},{f},{t}\n" for e, f, t in rows)
    lead_import = upload(cast, csv_bytes(body), duplicates=duplicates, list_name="Many")
    run_jobs()
    done = import_in(cast, lead_import.pk)
    leads = leads_in(cast)
    assert set(leads) == {f"u{n}@example.com" for n in range(15)}
    assert all([x.name for x in lead.lists.all()] == ["Many"] for lead in leads.values())
    for email, lead in leads.items():
        mine = [(f, t) for e, f, t in rows if e == email]
        if duplicates == "update":
            assert lead.first_name == mine[-1][0]
            assert lead.tags == list(dict.fromkeys(t for _, t in mine))
        else:
            assert (lead.first_name, lead.tags) == (mine[0][0], [mine[0][1]])
    if duplicates == "update":
        assert (done.created, done.updated, done.skipped) == (15, 185, 0)
    else:
        assert (done.created, done.updated, done.skipped) == (15, 0, 185)
        reasons = [reason for *_, reason in _errors(cast, lead_import.pk)]
        assert len(reasons) == 185
        # 5 repeats within the first batch; every row after it finds its lead.
        assert reasons.count("duplicate: the lead exists") == 180


def test_it_resumes_after_a_failure_inside_a_ramp_batch(
    cast: Cast, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batches of a run are smaller (2, 3, then 5 here): a failure in one leaves a
    prefix of whole batches, and the re-run, ramping again from there, writes each row once."""
    from django.db import DatabaseError

    from campaigns.services import lead_import as service
    from campaigns.services.lead_import import reader

    monkeypatch.setattr(reader, "RAMP", (2, 3))
    settings.LEAD_IMPORT_BATCH_SIZE = 5
    body = "email\n" + "".join(f"m{n}@example.com\n" for n in range(20)) + "bad\n"
    lead_import = upload(cast, csv_bytes(body))
    seen: list[int] = []
    _fail_when(cast, "NEW.processed = 5")  # the second batch (rows 3-5) as it commits
    with schema_context(cast.tenant.schema_name), pytest.raises(DatabaseError, match="injected"):
        service.run_import(
            lead_import.pk, tenant=cast.tenant, on_progress=lambda i: seen.append(i.processed)
        )
    _stop_failing(cast)
    half = import_in(cast, lead_import.pk)
    assert seen == [0, 2]
    assert (half.status, half.processed, half.created, len(leads_in(cast))) == ("running", 2, 2, 2)
    seen.clear()
    with schema_context(cast.tenant.schema_name):
        service.run_import(
            lead_import.pk, tenant=cast.tenant, on_progress=lambda i: seen.append(i.processed)
        )
    # Resumed after row 2: batches of 2, 3, 5, 5 and the last row.
    assert seen == [2, 4, 7, 12, 17, 21, 21]
    done = import_in(cast, lead_import.pk)
    assert (done.status, done.processed, done.created, done.failed) == ("completed", 21, 20, 1)
    assert len(leads_in(cast)) == 20
    assert [line for line, *_ in _errors(cast, lead_import.pk)] == [22]


def test_it_fails_an_import_whose_csv_breaks_past_the_check_with_the_rows_before_it(
    cast: Cast, settings: Any
) -> None:
    """A stray quote opens a cell that never closes: only the csv parser sees it (the file is
    UTF-8), so the import stops at that row, keeps the batches before it and says so."""
    settings.LEAD_IMPORT_BATCH_SIZE = 1000
    good = "".join(f"q{n:06d}@example.com,x\n" for n in range(4000))
    body = "email,note\n" + good + 'late@example.com,"never closed\n' + "y" * 140_000 + "\n"
    lead_import = upload(cast, csv_bytes(body))
    run_jobs()
    done = import_in(cast, lead_import.pk)
    assert done.status == ImportStatus.FAILED
    assert "field larger than field limit" in done.error_message
    assert "The 4,000 rows before it were imported." in done.error_message
    assert (done.processed, done.created, len(leads_in(cast))) == (4000, 4000, 4000)
