"""The account mails: the verification link after sign-up and the sign-in link of ``/signin``.

Their content is fixed (templates ``email/link.txt`` and ``link.html``): nothing in them comes
from whoever asked for the mail -- not the address, not a name -- so sign-up cannot be used to
send someone text of the sender's choosing (issue 14, finding 5). The link itself is made by
:mod:`aggregator.accounts.links`, which also bounds the mails per address. Sent over the SMTP
connection of :func:`aggregator.mail.smtp.smtp_connect`, one message per connection; a failure
is logged and reported as False, never raised (the person can ask again).
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import logging
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import quote

from aggregator.config import Settings
from aggregator.mail.render import HEADER_POLICY, sender_domain
from aggregator.mail.smtp import SmtpFactory, _error_text, _valid_address, smtp_connect
from aggregator.templating import environment

log = logging.getLogger(__name__)

SUBJECTS = {"verify": "Confirm your email address", "signin": "Your sign-in link"}
#: The path of the link's confirmation page (:mod:`aggregator.api.pages.signin`).
LINK_PATH = "/signin/link"


@dataclass(frozen=True, slots=True)
class LinkMail:
    subject: str
    text: str
    html: str


def link_url(base_url: str, token: str) -> str:
    """The absolute URL of a sign-in link under ``AGGREGATOR_PUBLIC_BASE_URL``."""
    return f"{base_url.rstrip('/')}{LINK_PATH}?t={quote(token, safe='')}"


def render_link_mail(purpose: str, url: str, max_age_seconds: int, site_url: str) -> LinkMail:
    """Both parts of the mail of a ``verify`` or ``signin`` link valid ``max_age_seconds``."""
    context = {"purpose": purpose, "url": url, "minutes": max_age_seconds // 60, "site_url": site_url}
    env = environment()
    return LinkMail(
        SUBJECTS[purpose],
        env.get_template("email/link.txt").render(context),
        env.get_template("email/link.html").render(context),
    )


def build_link_message(
    mail: LinkMail, *, mail_from: str, to: str, date: dt.datetime | None = None
) -> EmailMessage:
    """The ``multipart/alternative`` message (text, then HTML), with ``Auto-Submitted:
    auto-generated`` (RFC 3834) so auto-responders stay quiet."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = mail_from
    msg["To"] = to
    msg["Subject"] = mail.subject
    msg["Date"] = email.utils.format_datetime(date or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = email.utils.make_msgid(idstring="link", domain=sender_domain(mail_from))
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(mail.text, cte="quoted-printable")
    msg.add_alternative(mail.html, subtype="html", cte="quoted-printable")
    msg.policy = HEADER_POLICY
    return msg


def send_link_mail(
    settings: Settings,
    to: str,
    purpose: str,
    token: str,
    max_age_seconds: int,
    smtp_factory: SmtpFactory | None = None,
) -> bool:
    """Mail a link to ``to``; True when the SMTP server accepted it. Never raises for SMTP or
    address problems (logged as warnings)."""
    problem = _valid_address(to)
    if problem is not None:
        log.warning("no %s link mailed: invalid address: %s", purpose, problem)
        return False
    site = settings.public_base_url.rstrip("/")
    mail = render_link_mail(purpose, link_url(site, token), max_age_seconds, site)
    msg = build_link_message(mail, mail_from=settings.mail_from, to=to)
    try:
        smtp = (smtp_factory or smtp_connect)(settings)
    except (OSError, smtplib.SMTPException) as err:
        log.warning("no %s link mailed: SMTP connect: %s", purpose, _error_text(err))
        return False
    try:
        smtp.send_message(msg, to_addrs=[to])
    except (OSError, smtplib.SMTPException) as err:
        log.warning("no %s link mailed: %s", purpose, _error_text(err))
        return False
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    return True
