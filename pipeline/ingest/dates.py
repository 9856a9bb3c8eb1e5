"""Dates of items that carry none in a header: from text, from file and folder names, and placeholders.

Meetings and documents take their date, in this order, from their own metadata (front matter, a
document's core properties, a transcript's `NOTE`/`Date:` line), then from a date written in the
file name, then in one of the three folders above it, else they stay undated. Written forms read:

* ISO and its relatives: `2024-03-21`, `2024_03_21`, `2024.03.21`, `2024/03/21`, compact `20240321`
  (Zoom's `GMT20240321-100000`, Teams' `20240321_100000`), each optionally followed by a time of day
  (`T10:00`, `_100000`, ` 10.00.00`);
* spelled: `21 March 2024`, `21-Mar-2024`, `March 21, 2024`, `Mar_21_2024`, `21st March 2024`;
* day first numeric `21-03-2024`, `21.03.2024` (read day first, as written outside the US);
* month only, in folders: `2024-03/` (day 1, and the flag says the day is not known), IETF's
  `interim-24-03/`.

A date before 1980-01-02 is a placeholder, not a date: Enron's undated messages read 1979-12-31 or
1980-01-01, and a zero PDF or ZIP timestamp reads 1970 or 1980-01-01. `real_date` turns those into
None, so that an item is undated rather than placed two decades early.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

PLACEHOLDER_BEFORE = datetime(1980, 1, 2, tzinfo=UTC)
LATEST_YEAR = 2100  # a year past this in a file name is a number, not a date
PATH_FOLDERS = 3  # how many folders above a file are searched for a date

_MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)(?:[a-z]*\.?)"
_SEP = r"[\s,_.-]+"
_DAY_MONTH_YEAR = re.compile(rf"(?<![a-z0-9])(\d{{1,2}})(?:st|nd|rd|th)?{_SEP}{_MONTH}{_SEP}(\d{{4}})(?!\d)", re.I)
_MONTH_DAY_YEAR = re.compile(
    rf"(?<![a-z]){_MONTH}{_SEP}(\d{{1,2}})(?:st|nd|rd|th)?{_SEP}(\d{{4}})(?!\d)", re.IGNORECASE
)
_TIME = r"(?:[T _-]?(?P<h>[01]\d|2[0-3])(?:[.:h-]?(?P<mi>[0-5]\d))(?:[.:-]?(?P<s>[0-5]\d))?(?!\d))?"
_ISO_DATE = re.compile(
    rf"(?<!\d)(?P<y>(?:19|20)\d\d)(?P<sep>[-/._])(?P<mo>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}})(?!\d){_TIME}"
)
_COMPACT_DATE = re.compile(rf"(?<!\d)(?P<y>(?:19|20)\d\d)(?P<mo>[01]\d)(?P<d>[0-3]\d)(?!\d){_TIME}")
_DMY_NUMERIC = re.compile(r"(?<!\d)(\d{1,2})([-/.])(\d{1,2})\2(\d{4})(?!\d)")
_YEAR_MONTH = re.compile(r"^(?P<y>(?:19|20)\d\d)[-_.](?P<mo>0?[1-9]|1[0-2])(?![\d])")
_INTERIM = re.compile(r"^interim-(\d{2})-(\d{2})$")


def real_date(stamp: datetime | None) -> datetime | None:
    """`stamp`, or None when it is a placeholder (before 1980-01-02) or past `LATEST_YEAR`."""
    if stamp is None:
        return None
    aware = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    if aware < PLACEHOLDER_BEFORE or aware.year > LATEST_YEAR:
        return None
    return aware


def is_placeholder(stamp: datetime | None) -> bool:
    return stamp is not None and real_date(stamp) is None


def utc_date(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime | None:
    try:
        return real_date(datetime(year, month, day, hour, minute, second, tzinfo=UTC))
    except ValueError:
        return None


def as_utc(value: object) -> datetime | None:
    """A date or datetime from metadata as an aware datetime (a bare date is midnight UTC); None for a
    placeholder or anything that does not read as a date."""
    if isinstance(value, datetime):
        return real_date(value)
    if isinstance(value, date):
        return utc_date(value.year, value.month, value.day)
    if isinstance(value, str):
        text = value.strip()
        try:
            return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            return date_in_text(text)
    return None


def _with_time(m: re.Match[str], year: int, month: int, day: int) -> datetime | None:
    hour, minute, second = (int(m.group(k)) if m.group(k) else 0 for k in ("h", "mi", "s"))
    return utc_date(year, month, day, hour, minute, second)


def _month(name: str) -> int:
    return _MONTHS[name.lower()[:3]]


def dates_in_text(text: str, *, compact: bool = False) -> list[tuple[int, datetime]]:
    """Every date found in `text` with its offset; `compact` also reads `20240321` (file names only:
    in prose eight digits are more often a number than a date)."""
    found: list[tuple[int, datetime]] = []
    for m in _ISO_DATE.finditer(text):
        if stamp := _with_time(m, int(m["y"]), int(m["mo"]), int(m["d"])):
            found.append((m.start(), stamp))
    if compact:
        for m in _COMPACT_DATE.finditer(text):
            if stamp := _with_time(m, int(m["y"]), int(m["mo"]), int(m["d"])):
                found.append((m.start(), stamp))
    for m in _DMY_NUMERIC.finditer(text):
        if stamp := utc_date(int(m[4]), int(m[3]), int(m[1])):
            found.append((m.start(), stamp))
    for m in _DAY_MONTH_YEAR.finditer(text):
        if stamp := utc_date(int(m[3]), _month(m[2]), int(m[1])):
            found.append((m.start(), stamp))
    for m in _MONTH_DAY_YEAR.finditer(text):
        if stamp := utc_date(int(m[3]), _month(m[1]), int(m[2])):
            found.append((m.start(), stamp))
    return sorted(found, key=lambda f: f[0])


def date_in_text(text: str) -> datetime | None:
    """The first date written in one of the module's forms in the text (not the compact one)."""
    found = dates_in_text(text)
    return found[0][1] if found else None


def date_in_name(name: str) -> datetime | None:
    """The first date in a file or folder name, compact `20240321` included."""
    found = dates_in_text(name, compact=True)
    return found[0][1] if found else None


def date_from_path(path: Path | str) -> tuple[datetime | None, bool]:
    """A date in the file name, else in one of the `PATH_FOLDERS` folders above it (nearest first).

    The flag says whether the day is known: a `2024-03/` or `interim-24-03/` folder gives only the
    month (the stamp is then its first day).
    """
    path = Path(path)
    if stamp := date_in_name(path.stem):
        return stamp, True
    for part in reversed(path.parent.parts[-PATH_FOLDERS:]):
        if stamp := date_in_name(part):
            return stamp, True
        if (m := _YEAR_MONTH.match(part)) and (stamp := utc_date(int(m["y"]), int(m["mo"]), 1)):
            return stamp, False
        if (m := _INTERIM.match(part)) and (stamp := utc_date(2000 + int(m[1]), int(m[2]), 1)):
            return stamp, False
    return None, False


def offset(stamp: datetime | None, seconds: float | None) -> datetime | None:
    """`stamp` moved on by `seconds` (a segment's start in its meeting); None stays None."""
    if stamp is None:
        return None
    return stamp + timedelta(seconds=seconds or 0.0)
