"""Replies to warm-up messages (docs/warmup.md, "Receiving side"): short, natural answers a
colleague would write, with no links, no tracking and no lorem ipsum. The warm-up corpus in
warmup/corpus/ writes new messages; these lines answer them. One is picked per reply from a hash
of the answered Message-ID, so a re-run writes the same reply."""

from __future__ import annotations

import hashlib

OPENERS = (
    "Thanks {name},",
    "Hi {name},",
    "Thanks for this, {name}.",
    "Hey {name},",
    "Good to hear from you, {name}.",
    "Cheers {name},",
    "Morning {name},",
    "Thanks for the note, {name}.",
)

ANSWERS = (
    "That works for me. I will take a proper look this afternoon and come back to you.",
    "Sounds good. Let's pick it up again on Thursday when the numbers are in.",
    "Got it, thanks. I have shared it with the team and will let you know what they think.",
    "Makes sense to me. I would keep the timeline as it is for now.",
    "Thanks for the update. Nothing to add from my side at the moment.",
    "Appreciated. I will check with Sam and confirm by the end of the week.",
    "Good point. I had not thought about it that way, let me have a think.",
    "All clear here. I will put it in the calendar.",
    "Perfect, that answers my question. Talk next week.",
    "Thanks, that is helpful. I will send over my notes tomorrow morning.",
    "Agreed. Let's keep it simple and see how the first round goes.",
    "Happy with that. Let me know if you need anything else from me.",
    "Noted, thank you. I will follow up once I am back at my desk.",
    "Yes, let's do that. Monday or Tuesday both suit me.",
    "Thanks for sending this over so quickly. I will read it properly tonight.",
    "Great, I will pass it on. It should be sorted by Friday.",
)

SIGNOFFS = ("Best,", "Thanks,", "Cheers,", "Speak soon,", "All the best,", "Regards,")


def _pick(options: tuple[str, ...], seed: bytes, salt: bytes) -> str:
    digest = hashlib.sha256(salt + b":" + seed).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


def _first_name(address: str) -> str:
    local = address.partition("@")[0].split("+")[0]
    words = "".join(c if c.isalpha() else " " for c in local).split()
    return words[0].capitalize() if words else "there"


def reply_body(
    answered_message_id: str, *, to_address: str, from_address: str, from_name: str = ""
) -> str:
    """The text of a reply to `answered_message_id`, from `from_address` to `to_address`."""
    seed = answered_message_id.encode("utf-8", "replace")
    opener = _pick(OPENERS, seed, b"opener").format(name=_first_name(to_address))
    answer = _pick(ANSWERS, seed, b"answer")
    signoff = _pick(SIGNOFFS, seed, b"signoff")
    return f"{opener}\n\n{answer}\n\n{signoff}\n{from_name or _first_name(from_address)}\n"


def reply_subject(subject: str) -> str:
    """`Re: subject`, once (a subject that already starts with Re: is kept)."""
    subject = " ".join((subject or "").split())
    return subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()


__all__ = ["ANSWERS", "OPENERS", "SIGNOFFS", "reply_body", "reply_subject"]
