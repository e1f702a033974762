"""Render a :class:`~aggregator.mail.compose.WeekEmail` into an RFC 5322 message.

The message is ``multipart/alternative`` (RFC 2046 §5.1.4): a ``text/plain`` part, then a
``text/html`` part (the preferred one last), both UTF-8, quoted-printable, from the Jinja2
templates ``templates/email/week.txt`` and ``week.html``. The HTML uses inline CSS only, no
JavaScript and no remote images. Headers: ``From``, ``To``, ``Subject`` ("Your ML week:
2026-W25"), ``Date`` (RFC 5322 §3.3), ``Message-ID`` (§3.6.4, made by :func:`new_message_id`),
``List-Unsubscribe`` and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058
one-click unsubscribe; RFC 2369), and ``Auto-Submitted: auto-generated`` (RFC 3834).
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
from dataclasses import dataclass
from email.message import EmailMessage

from aggregator.mail.compose import WeekEmail, parse_hhmm
from aggregator.mail.tokens import FEEDBACK_MAX_AGE, EmailLinks
from aggregator.templating import environment

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: Headers are written unfolded up to RFC 5322's 998-character line limit, so that the long
#: ``List-Unsubscribe`` URL stays one token (the default policy would RFC 2047-encode it).
HEADER_POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """Both bodies of a weekly email and the data its headers need."""

    subject: str
    text: str
    html: str
    unsubscribe_url: str


def subject_of(iso_week: str) -> str:
    return f"Your ML week: {iso_week}"


def date_range(first: dt.date, last: dt.date) -> str:
    """``8–14 June 2026``, ``29 June – 5 July 2026`` or ``29 Dec 2025 – 4 Jan 2026``."""
    if first.year != last.year:
        return f"{first:%-d %b %Y} – {last:%-d %b %Y}"
    if first.month != last.month:
        return f"{first:%-d %B} – {last:%-d %B %Y}"
    return f"{first.day}–{last:%-d %B %Y}"


def render_week(
    week: WeekEmail, links: EmailLinks, weekday: int = 0, send_time: str = "08:00"
) -> RenderedEmail:
    """Render both parts. ``links`` signs the 👍/👎 and unsubscribe URLs; ``weekday`` (0 =
    Monday) and ``send_time`` (HH:MM) are the reader's schedule, named in the footer."""
    item_links = {
        i.item_id: (
            links.feedback(week.reader_id, i.item_id, 1),
            links.feedback(week.reader_id, i.item_id, -1),
        )
        for i in week.items
    }
    unsubscribe = links.unsubscribe(week.reader_id)
    top = [i.title for i in week.items[:2]]
    context = {
        "week": week,
        "links": item_links,
        "unsubscribe_url": unsubscribe,
        "settings_url": links.page("/me/profile"),
        "site_url": links.page("/me"),
        "month_url": links.page(f"/trends/month?month={week.month.month}") if week.month else "",
        "date_range": date_range(week.first_day, week.last_day),
        "weekday_name": WEEKDAYS[weekday % 7],
        "send_time": parse_hhmm(send_time).strftime("%H:%M"),
        "feedback_days": FEEDBACK_MAX_AGE // 86400,
        "preheader": " · ".join(top) if top else "Nothing new matched your interests this week.",
    }
    env = environment()
    return RenderedEmail(
        subject=subject_of(week.iso_week),
        text=env.get_template("email/week.txt").render(context),
        html=env.get_template("email/week.html").render(context),
        unsubscribe_url=unsubscribe,
    )


def sender_domain(mail_from: str) -> str:
    """The domain of the From address (``"Digest <d@example.org>"`` → ``example.org``).
    Raises ``ValueError`` when ``mail_from`` holds no address with a domain."""
    address = email.utils.parseaddr(mail_from)[1]
    if "@" not in address or not address.rsplit("@", 1)[1]:
        raise ValueError(f"AGGREGATOR_MAIL_FROM {mail_from!r} has no address like name@domain")
    return address.rsplit("@", 1)[1]


def new_message_id(mail_from: str) -> str:
    """A fresh ``Message-ID`` (``<…@domain>``, :func:`email.utils.make_msgid`) on the domain
    of the From address, as RFC 5322 §3.6.4 recommends."""
    return email.utils.make_msgid(idstring="week", domain=sender_domain(mail_from))


def build_message(
    rendered: RenderedEmail,
    *,
    mail_from: str,
    to: str,
    message_id: str,
    date: dt.datetime | None = None,
) -> EmailMessage:
    """The ``multipart/alternative`` message, ready for :meth:`smtplib.SMTP.send_message`.
    ``date`` (aware; default now) becomes the ``Date`` header."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = mail_from
    msg["To"] = to
    msg["Subject"] = rendered.subject
    msg["Date"] = email.utils.format_datetime(date or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = message_id
    msg["List-Unsubscribe"] = f"<{rendered.unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    msg.policy = HEADER_POLICY  # bodies are encoded already (76-char lines); headers unfolded
    return msg
