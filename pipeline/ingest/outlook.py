"""Outlook mail: `.msg` files (extract-msg) and `.pst`/`.ost` stores (libpff-python, imported as `pypff`).

Each Outlook message is turned into the same `EmailMessage` headers an RFC 822 file would give
(From, To, Cc, Subject, Date, Message-ID, In-Reply-To, References) and handed to the email reader's
`message_item`, so items from Outlook get the same fields, reply stripping, threading and people as
items from mbox. MAPI properties are preferred to the transport headers a received message keeps:
they are decoded, and sent items have nothing else. Items other than e-mail (appointments, contacts,
tasks) are skipped and counted in the log; a store folder's path becomes the item's `x_folder`.
"""

from __future__ import annotations

import codecs
import email.utils
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import HeaderParser
from typing import Any

from pipeline.ingest.base import Source, UnreadableInput, decode, register
from pipeline.ingest.email import _html_to_text, message_item, repair_headers
from pipeline.items import InputError, Item

log = logging.getLogger(__name__)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PST_MAGIC = b"!BDN"
_MAIL_CLASS = "ipm.note"  # IPM.Note and its variants (IPM.Note.SMIME); not IPM.Appointment, IPM.Contact

# MAPI property tags (MS-OXPROPS) read from a PST's record sets.
_PR_MESSAGE_CLASS = 0x001A
_PR_SENDER_EMAIL = 0x0C1F
_PR_SENDER_SMTP = 0x5D01
_PR_MESSAGE_ID = 0x1035
_PR_IN_REPLY_TO = 0x1042
_PR_REFERENCES = 0x1039
_PR_RECIPIENT_TYPE = 0x0C15
_PR_DISPLAY_NAME = 0x3001
_PR_EMAIL_ADDRESS = 0x3003
_PR_SMTP_ADDRESS = 0x39FE
_RECIPIENT_HEADERS = {1: "To", 2: "Cc"}  # 3 is Bcc: not a participant others saw
_PR_INTERNET_CPID = "3FDE0003"  # the code page of an ANSI .msg's strings


@dataclass
class OutlookMail:
    """What an Outlook message says, in the terms of RFC 822 headers."""

    subject: str = ""
    sender: str = ""  # `Name <address>`, or a name where Outlook kept no address
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: datetime | None = None
    message_id: str = ""
    in_reply_to: str = ""
    references: str = ""
    transport_headers: str = ""
    body: str = ""
    folder: str = ""

    def headers(self) -> EmailMessage:
        """The message's headers: the transport headers, overridden by what the properties say."""
        text = repair_headers(self.transport_headers.replace("\r\n", "\n").encode("utf-8", "replace"))
        message = HeaderParser(policy=policy.default).parsestr(text.decode("utf-8", "replace"))
        assert isinstance(message, EmailMessage)
        # Exchange opens its transport headers with a banner line ("Microsoft Mail Internet Headers
        # Version 2.0"); the parser's complaints about that say nothing about the message.
        message.defects.clear()
        values = {
            "Subject": self.subject,
            "From": self.sender,
            "To": ", ".join(self.to),
            "Cc": ", ".join(self.cc),
            "Date": email.utils.format_datetime(self.date) if self.date else "",
            "Message-ID": self.message_id,
            "In-Reply-To": self.in_reply_to,
            "References": self.references,
            "X-Folder": self.folder,
        }
        for name, value in values.items():
            value = " ".join(value.replace("\x00", "").split())
            if value:
                del message[name]
                message[name] = value
        return message


def _address(name: str | None, address: str | None) -> str:
    """`Name <address>`; Exchange-internal addresses (`/O=ORG/OU=...`) are no address to show."""
    name = (name or "").replace("\x00", "").strip()
    address = (address or "").replace("\x00", "").strip()
    if "@" not in address:
        return name
    return email.utils.formataddr((name, address)) if name and name != address else address


def _utc(stamp: datetime | None) -> datetime | None:
    """libpff gives naive UTC times; Outlook's seconds fractions would only split duplicates apart."""
    if stamp is None:
        return None
    stamp = stamp.replace(microsecond=0)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _text_body(plain: str | None, html: str | bytes | None, limit: int) -> str:
    if plain and plain.strip():
        return plain[:limit]
    if isinstance(html, bytes):
        html = decode(html[:limit])
    return _html_to_text(html[:limit]) if html else ""


def _items(source: Source, mails: Iterator[OutlookMail | InputError]) -> Iterator[Item | InputError]:
    """Items of a file's messages; a Message-ID seen twice (a copy in Sent Items) is named by position."""
    seen: set[str] = set()
    for index, mail in enumerate(mails):
        if isinstance(mail, InputError):
            yield mail
            continue
        key = f"{mail.message_id}@{index}" if mail.message_id and mail.message_id in seen else None
        seen.add(mail.message_id)
        item = message_item(source, mail.headers(), index, body_text=mail.body, key=key)
        if item is None:
            log.debug("%s: message %d has neither subject nor text", source.path, index)
            continue
        yield item


# --- .msg ----------------------------------------------------------------------------------------


def _is_msg(source: Source) -> bool:
    return source.head(8) == _OLE_MAGIC


def _open_msg(data: bytes) -> Any:
    import extract_msg

    message = extract_msg.openMsg(data)
    # An ANSI message's strings are in the code page it names; extract-msg would read them as cp1252.
    cpid = None if message.areStringsUnicode else message.getPropertyVal(_PR_INTERNET_CPID)
    if isinstance(cpid, int):
        try:
            encoding = codecs.lookup(f"cp{cpid}").name
        except LookupError:
            return message
        if encoding != codecs.lookup(message.stringEncoding).name:
            message.close()
            return extract_msg.openMsg(data, overrideEncoding=encoding)
    return message


def _msg_mail(message: Any, limit: int) -> OutlookMail:
    recipients: dict[str, list[str]] = {"To": [], "Cc": []}
    for recipient in getattr(message, "recipients", None) or []:
        header = _RECIPIENT_HEADERS.get(int(getattr(recipient, "type", 0) or 0))
        if header and (address := _address(recipient.name, recipient.email)):
            recipients[header].append(address)
    header = getattr(message, "header", None)
    try:
        html = None if (message.body or "").strip() else message.htmlBody
    except Exception as exc:  # an undecodable HTML body loses only the fallback
        log.debug("htmlBody failed: %s", exc)
        html = None
    sender = message.sender or ""
    if "<" not in sender:  # a display name only (which may hold an `@`): the address is in the properties
        address = message.getStringStream("__substg1.0_5D01") or message.getStringStream("__substg1.0_0C1F")
        sender = _address(sender, address) or sender
    return OutlookMail(
        subject=message.subject or "",
        sender=sender,
        to=recipients["To"],
        cc=recipients["Cc"],
        date=_utc(message.date),
        message_id=message.messageId or "",
        in_reply_to=message.inReplyTo or "",
        references=(header.get("References") if header is not None else None) or "",
        transport_headers=getattr(message, "headerText", None) or "",
        body=_text_body(message.body, html, limit),
    )


@register("outlook-msg", suffixes=(".msg",), sniff=_is_msg)
def read_msg(source: Source) -> Iterator[Item | InputError]:
    """One Outlook `.msg` message (an OLE compound file; a text `.msg` goes to the email reader)."""
    from extract_msg.exceptions import ExMsgBaseException

    data = source.read_bytes()
    try:
        message = _open_msg(data)
    except (ExMsgBaseException, OSError, ValueError, KeyError) as exc:
        raise UnreadableInput("parse", f"not a readable Outlook message: {type(exc).__name__}: {exc}") from exc
    try:
        kind = str(getattr(message, "classType", None) or "")
        if kind and not kind.lower().startswith(_MAIL_CLASS):
            raise UnreadableInput("unsupported", f"an Outlook {kind} item, not an e-mail message")
        mail = _msg_mail(message, source.options.max_file_bytes)
    finally:
        message.close()
    yield from _items(source, iter([mail]))


# --- .pst / .ost ---------------------------------------------------------------------------------


def _is_pst(source: Source) -> bool:
    return source.head(4) == _PST_MAGIC


def _properties(item: Any) -> dict[int, Any]:
    """The first record set's entries by property tag; libpff raises for values it cannot convert."""
    found: dict[int, Any] = {}
    if not getattr(item, "number_of_record_sets", 0):
        return found
    for entry in item.get_record_set(0).entries:
        found.setdefault(entry.entry_type, entry)
    return found


def _string(entries: dict[int, Any], tag: int) -> str:
    entry = entries.get(tag)
    if entry is None:
        return ""
    try:
        return (entry.get_data_as_string() or "").replace("\x00", "")
    except OSError:
        return ""


def _integer(entries: dict[int, Any], tag: int) -> int:
    entry = entries.get(tag)
    try:
        return int(entry.get_data_as_integer()) if entry is not None else 0
    except OSError:
        return 0


def _pst_text(value: bytes | None, limit: int) -> str:
    return decode(value[:limit]) if value and value.strip() else ""


def _pst_mail(message: Any, folder: str, limit: int) -> OutlookMail | None:
    """The mail of one PST item; None for items that are not e-mail."""
    props = _properties(message)
    message_class = _string(props, _PR_MESSAGE_CLASS)
    if message_class and not message_class.lower().startswith(_MAIL_CLASS):
        return None
    recipients: dict[str, list[str]] = {"To": [], "Cc": []}
    holder = getattr(message, "recipients", None)
    for number in range(getattr(holder, "number_of_record_sets", 0) or 0):
        entries = {entry.entry_type: entry for entry in holder.get_record_set(number).entries}
        header = _RECIPIENT_HEADERS.get(_integer(entries, _PR_RECIPIENT_TYPE))
        address = _string(entries, _PR_SMTP_ADDRESS) or _string(entries, _PR_EMAIL_ADDRESS)
        if header and (shown := _address(_string(entries, _PR_DISPLAY_NAME), address)):
            recipients[header].append(shown)
    sender_address = _string(props, _PR_SENDER_SMTP) or _string(props, _PR_SENDER_EMAIL)
    html = None if (plain := _pst_text(getattr(message, "plain_text_body", None), limit)) else message.html_body
    return OutlookMail(
        subject=getattr(message, "subject", None) or "",
        sender=_address(getattr(message, "sender_name", None), sender_address),
        to=recipients["To"],
        cc=recipients["Cc"],
        date=_utc(getattr(message, "client_submit_time", None) or getattr(message, "delivery_time", None)),
        message_id=_string(props, _PR_MESSAGE_ID),
        in_reply_to=_string(props, _PR_IN_REPLY_TO),
        references=_string(props, _PR_REFERENCES),
        transport_headers=getattr(message, "transport_headers", None) or "",
        body=_text_body(plain, html, limit),
        folder=folder,
    )


def _pst_mails(source: Source, folder: Any, path: str, skipped: list[int]) -> Iterator[OutlookMail | InputError]:
    """Depth first through the folders; a message that fails to read is one error line, not the store."""
    limit = source.options.max_file_bytes
    for number in range(folder.number_of_sub_messages):
        try:
            mail = _pst_mail(folder.get_sub_message(number), path, limit)
        except (OSError, ValueError, UnreadableInput) as exc:
            yield InputError(f"{source.path}:{path}/{number}", "bad-record", f"{type(exc).__name__}: {exc}")
            continue
        if mail is None:
            skipped[0] += 1
        else:
            yield mail
    for number in range(folder.number_of_sub_folders):
        sub = folder.get_sub_folder(number)
        name = getattr(sub, "name", None) or ""
        yield from _pst_mails(source, sub, f"{path}/{name}".strip("/"), skipped)


@register("outlook-pst", suffixes=(".pst", ".ost"), sniff=_is_pst)
def read_pst(source: Source) -> Iterator[Item | InputError]:
    """Every e-mail message in an Outlook store, all folders; read in place like an mbox, not loaded whole."""
    import pypff

    if source.size > source.options.max_archive_bytes:
        raise UnreadableInput(
            "too-large", f"{source.size} bytes is over the {source.options.max_archive_bytes}-byte limit"
        )
    store = pypff.file()
    try:
        store.open(str(source.path))
    except OSError as exc:
        raise UnreadableInput("parse", f"not a readable Outlook store: {exc}") from exc
    skipped = [0]
    try:
        yield from _items(source, _pst_mails(source, store.get_root_folder(), "", skipped))
    finally:
        store.close()
    if skipped[0]:
        log.info("%s: %d items that are not e-mail (calendar, contacts, tasks) skipped", source.path, skipped[0])
