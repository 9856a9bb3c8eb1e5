"""Convert the two e-mail collections that are not RFC 822 into seci's generic JSONL input.

- `clinton`: the State Department FOIA release (`emails/clinton_state_dept_foia`): OCR text, one file per
  released document, a FOIA stamp on every page and an Outlook header block (`From:`, `Sent:`, `To:`,
  `Cc:`, `Subject:`) before the body and its quoted thread.
- `enron-pst`: HTML renderings of Outlook PST mail (`emails/enron_pst_html`): a header table and a
  `msg_body` div.

Each message becomes one line `{"id", "text", "source": "email", "title", "timestamp", "authors",
"participants", "thread", "team", "group"}`: the text is the message's own (subject, then the body without
quoted replies, signatures and footers, by the same `strip_reply` the mail reader uses), `thread` the
normalized subject, `team` and `group` what a split by whole groups needs (the sender for Clinton, whose
documents all come from one account; the mailbox for Enron). Nothing in an input is executed; each file is
size-checked before it is read.

    python scripts/convert_mail_exports.py clinton ../shared/data/emails/clinton_state_dept_foia --out x.jsonl
    python scripts/convert_mail_exports.py enron-pst ../shared/data/emails/enron_pst_html --out y.jsonl
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from bs4 import BeautifulSoup

from pipeline.ingest.email import strip_reply, subject_key

log = logging.getLogger("convert_mail_exports")
MAX_BYTES = 1 << 20  # both collections' files are far smaller; anything larger is not a message

_STAMP = re.compile(r"^\s*UNCLASSIFIED\s+U\.S\. Department of State.*$", re.M)
_RELEASE = re.compile(r"^\s*RELEASE IN (FULL|PART)[^\n]*$", re.M)
_FIELD = re.compile(
    r"^(From|Sent|To|Cc|Subject|Attachments|Importance)\s*:?\s{2,}(.*)$|^(From|Sent|To|Cc|Subject):\s*(.*)$"
)
_ORIGINAL = re.compile(r"^[ \t]*-*[ \t]*Original Message[ \t]*-*[ \t]*$", re.M)
_SENT = re.compile(r"(\w+ \d{1,2}, \d{4})\s+(\d{1,2}:\d{2}\s*[AP]M)", re.I)


def _collapse(text: str) -> str:
    return re.sub(r"[ \t]{2,}", " ", text)


def person_key(sender: str) -> str:
    """One group per sender despite OCR variants: `Sullivan, Jacob J <SullivanJJ@state.gov>` and
    `Sullivan, Jacob 1` are both `sullivan`; `H` (the Secretary) is `h`."""
    name = re.sub(r"<[^>]*>|\[[^\]]*\]", "", sender).strip().strip("'\"")
    if "," in name:
        name = name.split(",")[0]
    elif "@" in sender and not name:
        name = sender.split("@")[0].strip("<> ")
    else:
        name = name.split()[-1] if name.split() else ""
    return re.sub(r"[^a-z]", "", name.lower()) or "unknown"


def _clinton_timestamp(sent: str) -> datetime | None:
    match = _SENT.search(sent.replace("201111:", "2011 11:"))
    if not match:
        return None
    try:
        return datetime.strptime(f"{match.group(1)} {match.group(2).replace(' ', '')}", "%B %d, %Y %I:%M%p").replace(
            tzinfo=UTC
        )
    except ValueError:
        return None


def clinton(root: Path) -> Iterator[dict]:
    rows = list(csv.DictReader((root / "manifest.csv").open(encoding="utf-8")))
    for row in rows:
        path = root / row["path"]
        if path.stat().st_size > MAX_BYTES:
            log.warning("%s: over %d bytes, skipped", path, MAX_BYTES)
            continue
        raw = _RELEASE.sub("", _STAMP.sub("", path.read_text(encoding="utf-8", errors="replace")))
        # OCR drops the dashes of Outlook's marker; strip_reply needs them to see the quoted thread.
        raw = _ORIGINAL.sub("-----Original Message-----", raw)
        lines = [line.strip() for line in raw.splitlines()]
        first = next((i for i, line in enumerate(lines) if re.match(r"^From\b\s*:?\s+\S", line)), None)
        if first is None:
            continue  # no header block: an attachment or memo, not a message
        fields: dict[str, str] = {}
        body_start = first
        for i in range(first, len(lines)):
            match = _FIELD.match(lines[i]) if lines[i] else None
            name = (match.group(1) or match.group(3)).lower() if match else None
            if name and name not in fields:
                fields[name] = (match.group(2) or match.group(4) or "").strip()
            elif lines[i] or name:
                body_start = i
                break
            body_start = i + 1
        if "from" not in fields:
            continue
        subject = fields.get("subject", "")
        body = strip_reply("\n".join(lines[body_start:]), subject)
        text = "\n\n".join(part for part in (subject, body) if part).strip()
        if not text:
            continue
        stamp = _clinton_timestamp(fields.get("sent", ""))
        sender = person_key(fields["from"])
        recipients = [r.strip() for r in re.split(r";", fields.get("to", "") + ";" + fields.get("cc", "")) if r.strip()]
        yield {
            "id": f"clinton:{path.stem}",
            "text": _collapse(text),
            "source": "email",
            "title": subject or None,
            "timestamp": stamp.isoformat() if stamp else None,
            "authors": [_collapse(fields["from"])],
            "participants": recipients,
            "thread": subject_key(subject) or None,
            "team": f"clinton:{sender}",
            "group": f"clinton:{sender}",
            "path": str(path),
        }


def _cell(soup: BeautifulSoup, row_id: str) -> list[str]:
    return [td.get_text(" ", strip=True) for tr in soup.find_all("tr", id=row_id) for td in tr.find_all("td")[1:]]


def enron_pst(root: Path) -> Iterator[dict]:
    rows = list(csv.DictReader((root / "manifest.csv").open(encoding="utf-8")))
    for row in rows:
        path = root / row["path"]
        if path.stat().st_size > MAX_BYTES:
            log.warning("%s: over %d bytes, skipped", path, MAX_BYTES)
            continue
        soup = BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "lxml")
        body_div = soup.find("div", id="msg_body")
        if body_div is None:
            continue
        for br in body_div.find_all("br"):
            br.replace_with("\n")
        subject = " ".join(_cell(soup, "subject_row"))
        body = strip_reply(html.unescape(body_div.get_text()), subject)
        text = "\n\n".join(part for part in (subject, body) if part).strip()
        if not text:
            continue
        try:
            stamp = datetime.strptime(row["date_ddmmyyyy"], "%d/%m/%Y %I:%M:%S %p").replace(tzinfo=UTC)
        except ValueError:
            stamp = None
        if stamp and stamp.year == 2002 and stamp.month == 11 and stamp.day == 30:
            stamp = None  # the Drafts' placeholder date
        mailbox = row["mailbox"]
        yield {
            "id": f"enron-pst:{row['path']}",
            "text": text,
            "source": "email",
            "title": subject or None,
            "timestamp": stamp.isoformat() if stamp else None,
            "authors": _cell(soup, "from_row"),
            "participants": _cell(soup, "to_row") + _cell(soup, "cc_row"),
            "thread": subject_key(subject) or None,
            "team": mailbox,
            "group": f"enron-pst:{mailbox}",
            "bulk": row["likely_bulk_or_automated"] == "1",
            "folder": row["folder"],
            "path": str(path),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["clinton", "enron-pst"])
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    convert = clinton if args.kind == "clinton" else enron_pst
    groups: Counter[str] = Counter()
    with args.out.open("w", encoding="utf-8") as fh:
        for record in convert(args.root):
            groups[record["group"]] += 1
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    total = sum(groups.values())
    log.info("%s: %d messages in %d groups; largest %s", args.out, total, len(groups), groups.most_common(8))


if __name__ == "__main__":
    main()
