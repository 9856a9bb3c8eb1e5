"""People: one person per identity, and addresses that are no person at all.

An item names its people as its readers found them: e-mail addresses (`anna.hartmann@acme.example`),
speakers' display names in transcripts (`Anna Hartmann`), authors of documents. One person then
shows up under several strings, and counting strings counts one person two or three times.
`PeopleIndex` merges the strings that name the same person (union-find) by:

* the display names the e-mail reader saw with each address (`meta["names"]`: `Anna Hartmann
  <anna.hartmann@acme.example>`);
* the aliases of the teams file (`TeamRules.aliases`: one entry listing a person's names);
* names written differently: case, spacing and punctuation are folded and `Hartmann, Anna` reads as
  `Anna Hartmann`;
* an address whose local part is a name of two or more words (`anna.hartmann@`, `anna_hartmann@`)
  is that name.

**Not people** (`is_non_person`): distribution lists and bulk senders, by the address's local part
(`all-staff@`, `announce@`, `no-reply@`, `platform-list@`, `dl-...@`, `*-request@`, Enron's
`all.worldwide@` ...), by a display name such as `undisclosed-recipients`, and the sender of a
message marked as list or automatic mail (`meta["bulk"]`: List-Id, Precedence, Auto-Submitted).
A message to more than `MAX_RECIPIENTS` addresses went to an expanded distribution list: its
recipients are an audience, not participants, so only its sender counts.

**Ba** still sees the size of the audience: an item with a list, a bulk marker or more than
`MAX_RECIPIENTS` recipients is a collective interaction (`collective` below), as a mailing list is
the paper's example of systemizing ba.

An item's people (the `people` column `resolve_people` adds) are the person ids of its authors and
participants, each once; a person's id is the most frequent display name seen for them, else their
first address. Participant counts, turn sizes and amplification all count these.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import pandas as pd

MAX_RECIPIENTS = 20

_NON_PERSON_LOCAL = re.compile(
    r"^(?:no-?reply|do-?not-?reply|donotreply|mailer-daemon|postmaster|bounces?|notifications?|alerts?|"
    r"announce(?:ments?)?|news(?:letters?)?|digest|all|everyone|everybody|staff|employees|"
    r"undisclosed-recipients|recipients|info|webmaster|calendar|automail|"
    r"(?:all|dl|list|lists|announce|announcements|owner)[-_.].*|"
    r".*[-_.](?:all|list|lists|dl|request|bounces|owner|announce|announcements|notifications|staff|everyone)|"
    r".*announcements.*|all\..*)$",
    re.IGNORECASE,
)
_NON_PERSON_NAME = re.compile(
    r"undisclosed|recipients|distribution|mailing list|all (?:staff|employees|users)|everyone|newsletter|no-?reply",
    re.IGNORECASE,
)
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def name_key(name: str) -> str:
    """A display name folded: `Hartmann, Anna` and ` anna  HARTMANN` both read `anna hartmann`."""
    name = " ".join(name.replace("\u00a0", " ").split())
    if name.count(",") == 1:
        last, first = (part.strip() for part in name.split(","))
        if last and first and " " not in last:
            name = f"{first} {last}"
    return " ".join(_PUNCT.sub(" ", name).lower().split())


def identity_key(value: str) -> str:
    """The key a raw people string is merged under: `addr:` for addresses, `name:` for names."""
    value = value.strip()
    if "@" in value and " " not in value:
        return f"addr:{value.lower()}"
    return f"name:{name_key(value)}"


def is_non_person(value: str) -> bool:
    """True for distribution lists, bulk and automatic senders (the module docstring's rules)."""
    value = value.strip()
    if not value:
        return True
    if "@" in value and " " not in value:
        local = value.split("@", 1)[0]
        return bool(_NON_PERSON_LOCAL.match(local))
    return bool(_NON_PERSON_NAME.search(value))


def _local_part_name(address: str) -> str | None:
    parts = [p for p in re.split(r"[._-]+", address.split("@", 1)[0]) if p]
    if len(parts) >= 2 and all(p.isalpha() and len(p) > 1 for p in parts):
        return " ".join(p.lower() for p in parts)
    return None


class PeopleIndex:
    """Merges the strings naming one person (rules in the module docstring)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._labels: dict[str, Counter[str]] = {}
        self._label_cache: dict[str, str] | None = None

    def _find(self, key: str) -> str:
        root = self._parent.setdefault(key, key)
        while root != self._parent[root]:
            root = self._parent[root]
        while key != root:
            key, self._parent[key] = self._parent[key], root
        return root

    def _union(self, a: str, b: str) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)
            self._label_cache = None

    def add(self, value: str, label: str | None = None) -> str:
        """Register a raw string (and a display label for it); returns its key."""
        key = identity_key(value)
        self._find(key)
        if key.startswith("addr:") and (local := _local_part_name(value)):
            self._union(key, f"name:{local}")
        self._labels.setdefault(key, Counter())[label or value.strip()] += 1
        self._label_cache = None
        return key

    def same(self, names: Sequence[str]) -> None:
        """The names all belong to one person (an alias entry, an address and its display name)."""
        keys = [self.add(n) for n in names if n and n.strip()]
        for other in keys[1:]:
            self._union(keys[0], other)

    def person(self, value: str) -> str:
        """The person id of a raw string: the label most seen among the strings merged with it, a
        display name (with a space) before an address."""
        root = self._find(identity_key(value))
        return self._label(root)

    def _label(self, root: str) -> str:
        if self._label_cache is None:
            self._label_cache = self._build_labels()
        return self._label_cache.get(root, root.split(":", 1)[1])

    def _build_labels(self) -> dict[str, str]:
        votes: dict[str, Counter[str]] = {}
        for key, labels in self._labels.items():
            votes.setdefault(self._find(key), Counter()).update(labels)
        out = {}
        for root, counter in votes.items():
            ranked = sorted(
                counter.items(), key=lambda kv: ("@" in kv[0], " " not in kv[0], "," in kv[0], -kv[1], kv[0])
            )
            out[root] = ranked[0][0]
        return out


def _names(meta: dict[str, str]) -> dict[str, str]:
    raw = meta.get("names")
    if not raw:
        return {}
    try:
        names = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}


def build_index(frame: pd.DataFrame, aliases: Iterable[Sequence[str]] = ()) -> PeopleIndex:
    """A `PeopleIndex` over the rows' authors, participants and display names, and the teams file's aliases."""
    index = PeopleIndex()
    for names in aliases:
        index.same(list(names))
    for authors, participants, meta in zip(frame["authors"], frame["participants"], frame["meta"], strict=True):
        for address, name in _names(meta).items():
            if not is_non_person(address) and not is_non_person(name):
                index.add(name)
                index.same([address, name])
        for value in (*authors, *participants):
            index.add(value)
    return index


def item_people(
    index: PeopleIndex, authors: Sequence[str], participants: Sequence[str], meta: dict[str, str]
) -> tuple[list[str], bool]:
    """The item's people (person ids, each once, authors first) and whether it reached a collective
    audience (a list, bulk mail, or more than `MAX_RECIPIENTS` recipients)."""
    bulk = bool(meta.get("bulk"))
    audience = bulk or len(participants) > MAX_RECIPIENTS or any(is_non_person(p) for p in participants)
    counted = [] if bulk else list(authors)
    if len(participants) <= MAX_RECIPIENTS:
        counted.extend(participants)
    people: list[str] = []
    for value in counted:
        if is_non_person(value):
            continue
        person = index.person(value)
        if person not in people:
            people.append(person)
    return people, audience


def resolve_people(frame: pd.DataFrame, aliases: Iterable[Sequence[str]] = ()) -> pd.DataFrame:
    """Add `people` (person ids) and `audience` (reached a list or a crowd) to result rows."""
    frame = frame.copy()
    index = build_index(frame, aliases)
    resolved = [
        item_people(index, a, p, m)
        for a, p, m in zip(frame["authors"], frame["participants"], frame["meta"], strict=True)
    ]
    frame["people"] = pd.Series([people for people, _ in resolved], index=frame.index, dtype=object)
    frame["audience"] = [audience for _, audience in resolved]
    return frame
