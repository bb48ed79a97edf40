"""The sandbox SMTP server delivering into Dovecot, and what each rule makes a recipient do."""

from __future__ import annotations

import smtplib
from email.message import Message

import pytest

from deliverability.inbound.classify import Kind, classify
from penguinmails.sandbox.rules import make_rule
from tests.sandbox_smtp_rules.conftest import World, campaign_message, verp

PROSPECT = "ghost@prospects.example"


def _raw(message: Message) -> bytes:
    return message.as_bytes()


def test_mail_for_a_dovecot_user_lands_in_its_inbox_and_is_still_captured(
    sandbox: World, sender: str, person: str
) -> None:
    message = campaign_message(sender, person)
    assert sandbox.send(verp(sender), person, message) == {}
    [delivered] = sandbox.inbox(person)
    assert delivered["Message-ID"] == message["Message-ID"]
    assert delivered["Delivered-To"] == person
    assert delivered["Return-Path"] == f"<{verp(sender)}>"
    captured = [
        m for m in sandbox.store.list_messages() if m.header("Message-ID") == message["Message-ID"]
    ]
    assert [c.envelope_to for c in captured] == [[person]]


def test_a_plus_tag_is_stripped_to_find_the_user(sandbox: World, sender: str, person: str) -> None:
    local, _, domain = person.partition("@")
    tagged = f"{local}+newsletter@{domain}"
    message = campaign_message(sender, tagged)
    sandbox.send(sender, tagged, message)
    [delivered] = sandbox.inbox(person)
    assert delivered["Delivered-To"] == tagged


def test_unknown_recipient_without_rule_is_accepted_and_goes_nowhere(
    sandbox: World, sender: str
) -> None:
    assert (
        sandbox.send(verp(sender), "nobody@prospects.example", campaign_message(sender, "x")) == {}
    )
    assert sandbox.inbox(sender) == []


def test_bounce_sends_an_rfc3464_dsn_to_the_verp_sender(sandbox: World, sender: str) -> None:
    sandbox.rules.set(make_rule(PROSPECT, "bounce"))
    message = campaign_message(sender, PROSPECT)
    assert sandbox.send(verp(sender), PROSPECT, message) == {}  # accepted, bounced later
    [dsn] = sandbox.inbox(sender)
    assert dsn["Delivered-To"] == verp(sender)
    assert dsn["To"] == verp(sender)
    assert dsn["Return-Path"] == "<>"
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    parts = [p.get_content_type() for p in dsn.get_payload()]
    assert parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    status = dsn.get_payload()[1].get_payload()
    assert status[0]["Reporting-MTA"] == "dns; mx.prospects.example"
    assert status[1]["Final-Recipient"] == f"rfc822; {PROSPECT}"
    assert status[1]["Action"] == "failed"
    assert status[1]["Status"] == "5.1.1"
    assert status[1]["Diagnostic-Code"] == "smtp; 550 5.1.1 user unknown"
    assert message["Message-ID"] in dsn.get_payload()[2].get_payload(decode=True).decode()

    verdict = classify(_raw(dsn))
    assert verdict.kind is Kind.BOUNCE
    [failed] = verdict.recipients
    assert (failed.address, failed.status, failed.klass) == (PROSPECT, "5.1.1", "hard")
    assert verdict.original_message_id == message["Message-ID"]


def test_defer_answers_451_at_rcpt(sandbox: World, sender: str) -> None:
    sandbox.rules.set(make_rule(PROSPECT, "defer"))
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        sandbox.send(verp(sender), PROSPECT, campaign_message(sender, PROSPECT))
    code, reply = refused.value.recipients[PROSPECT]
    assert code == 451
    assert reply.startswith(b"4.2.0")
    assert sandbox.inbox(sender) == []


def test_reject_answers_550_at_rcpt_and_other_recipients_still_get_it(
    sandbox: World, sender: str, person: str
) -> None:
    sandbox.rules.set(make_rule(PROSPECT, "reject"))
    message = campaign_message(sender, PROSPECT)
    refused = sandbox.send(verp(sender), [PROSPECT, person], message)
    assert refused[PROSPECT][0] == 550
    assert refused[PROSPECT][1].startswith(b"5.1.1")
    assert len(sandbox.inbox(person)) == 1
    assert sandbox.inbox(sender) == []  # refused at RCPT: the client knows, no DSN


def test_complain_sends_an_arf_report(sandbox: World, sender: str) -> None:
    sandbox.rules.set(make_rule(PROSPECT, "complain"))
    message = campaign_message(sender, PROSPECT)
    sandbox.send(verp(sender), PROSPECT, message)
    [report] = sandbox.inbox(sender)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "feedback-report"
    human, feedback, original = report.get_payload()
    assert feedback.get_content_type() == "message/feedback-report"
    fields = feedback.get_payload()
    fields = fields if isinstance(fields, str) else fields[0].as_string()
    for line in (
        "Feedback-Type: abuse",
        "Version: 1",
        f"Original-Mail-From: <{verp(sender)}>",
        "User-Agent: ",
        "Arrival-Date: ",
    ):
        assert line in fields
    assert original.get_content_type() == "message/rfc822"
    assert original.get_payload(0)["Message-ID"] == message["Message-ID"]

    verdict = classify(_raw(report))
    assert verdict.kind is Kind.COMPLAINT
    assert verdict.feedback_type == "abuse"
    assert verdict.original_message_id == message["Message-ID"]
    assert [r.address for r in verdict.recipients] == [PROSPECT]


def test_reply_threads_on_the_original_and_goes_to_its_from(sandbox: World, sender: str) -> None:
    sandbox.rules.set(make_rule(PROSPECT, "reply"))
    message = campaign_message(sender, PROSPECT, subject="Penguins for you")
    sandbox.send(verp(sender), PROSPECT, message)
    [answer] = sandbox.inbox(sender)
    assert answer["From"] == PROSPECT
    assert answer["Subject"] == "Re: Penguins for you"
    assert answer["In-Reply-To"] == message["Message-ID"]
    assert message["Message-ID"] in answer["References"]
    assert answer["Delivered-To"] == sender  # the header From, not the VERP address
    assert answer["Auto-Submitted"] is None
    assert classify(_raw(answer)).kind is Kind.REPLY


def test_ooo_sends_an_rfc3834_auto_reply_with_a_return_date(sandbox: World, sender: str) -> None:
    sandbox.rules.set(make_rule(PROSPECT, "ooo"))
    message = campaign_message(sender, PROSPECT)
    sandbox.send(verp(sender), PROSPECT, message)
    [answer] = sandbox.inbox(sender)
    assert answer["Auto-Submitted"] == "auto-replied"
    assert answer["Delivered-To"] == verp(sender)  # RFC 3834: to the Return-Path
    assert answer["In-Reply-To"] == message["Message-ID"]
    verdict = classify(_raw(answer))
    assert verdict.kind is Kind.AUTO_REPLY
    assert verdict.return_date is not None
    assert verdict.return_date in answer.get_payload(decode=True).decode()


def test_a_null_sender_gets_no_answer(sandbox: World, sender: str) -> None:
    sandbox.rules.set(make_rule(PROSPECT, "bounce"))
    assert sandbox.send("", PROSPECT, campaign_message(sender, PROSPECT)) == {}
    assert sandbox.inbox(sender) == []


def test_a_bounced_dovecot_user_does_not_get_the_message(
    sandbox: World, sender: str, person: str
) -> None:
    sandbox.rules.set(make_rule(person, "bounce"))
    sandbox.send(verp(sender), person, campaign_message(sender, person))
    assert sandbox.inbox(person) == []
    [dsn] = sandbox.inbox(sender)
    assert classify(_raw(dsn)).recipients[0].address == person


def test_a_domain_rule_with_a_share_answers_the_same_messages_every_time(
    sandbox: World, sender: str
) -> None:
    rule = make_rule("*@prospects.example", "reply", share=0.5)
    sandbox.rules.set(rule)
    sandbox.rules.set(make_rule("vip@prospects.example", "accept"))  # more specific wins
    messages = [campaign_message(sender, f"p{n}@prospects.example") for n in range(12)]
    for n, message in enumerate(messages):
        sandbox.send(verp(sender), f"p{n}@prospects.example", message)
    sandbox.send(verp(sender), "vip@prospects.example", campaign_message(sender, "vip"))
    expected = {m["Message-ID"] for m in messages if rule.hits(m["Message-ID"])}
    answered = {m["In-Reply-To"] for m in sandbox.inbox(sender)}
    assert answered == expected
    assert 0 < len(expected) < len(messages)


def test_rules_are_reread_without_a_restart(sandbox: World, sender: str) -> None:
    message = campaign_message(sender, PROSPECT)
    assert sandbox.send(verp(sender), PROSPECT, message) == {}
    sandbox.rules.set(make_rule(PROSPECT, "reject"))  # another process's write, same file
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        sandbox.send(verp(sender), PROSPECT, campaign_message(sender, PROSPECT))
    sandbox.rules.clear(PROSPECT)
    assert sandbox.send(verp(sender), PROSPECT, campaign_message(sender, PROSPECT)) == {}
