"""One thread id per e-mail conversation, named by its root message, whatever the clients wrote.

Mail clients link a reply to its conversation in four ways, and an archive mixes them:

* a full `References` chain (root first, parent last): RFC 5322's way;
* a parent-only `References` (just the message replied to), as some clients and list servers write;
* only `In-Reply-To` (the parent);
* nothing at all (Enron's exports): then only the subject, without `Re:`/`Fw:`, links a reply.

No single message tells its root in the last three cases, so `resolve_threads` looks at all of them:

1. Every Message-ID a message names (References and In-Reply-To) is linked to the message: the
   links form one graph per conversation (union-find), whatever style each message used.
2. A message that names no other (a root, or an Enron message) is linked to its subject key
   (`subject_key` in `pipeline.ingest.email`): Enron replies join their first message this way, and
   so does the first message of a thread whose replies carry references.
3. The thread's root is a message of the group that names no other message, the earliest by date
   (a subject without `Re:` first, then the date, then the Message-ID); when the group holds none
   (the first message is not in the archive), the referenced Message-ID that no message of the group
   is known to have a parent for, the one named first by the earliest messages. The thread id is the
   root's Message-ID, or `subject:<key>` when the root has none.

Messages without any of these fields (meetings, documents) keep their thread.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from pipeline.items import Item

_NO_STAMP = math.inf


@dataclass
class Message:
    """What threading needs of one message; `key` names it in the caller's terms (an item id)."""

    key: str
    message_id: str = ""
    references: Sequence[str] = ()
    in_reply_to: str = ""
    subject_key: str = ""
    reply_subject: bool = False  # the subject had a Re:/Fw: prefix
    stamp: float = _NO_STAMP  # seconds since the epoch; inf when undated

    @property
    def parents(self) -> list[str]:
        named = [r for r in self.references if r and r != self.message_id]
        if self.in_reply_to and self.in_reply_to not in named and self.in_reply_to != self.message_id:
            named.append(self.in_reply_to)
        return named


@dataclass
class _UnionFind:
    parent: dict[str, str] = field(default_factory=dict)

    def find(self, node: str) -> str:
        root = self.parent.setdefault(node, node)
        while root != self.parent[root]:
            root = self.parent[root]
        while node != root:  # path compression
            node, self.parent[node] = self.parent[node], root
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _node(message: Message) -> str:
    return f"id:{message.message_id}" if message.message_id else f"key:{message.key}"


def resolve_threads(messages: Iterable[Message]) -> dict[str, str]:
    """Map each message's `key` to its thread id: the root's Message-ID (rules in the module docstring)."""
    messages = list(messages)
    links = _UnionFind()
    by_id: dict[str, Message] = {}
    for m in messages:
        if m.message_id:
            by_id.setdefault(m.message_id, m)
    for m in messages:
        node = _node(m)
        links.find(node)
        parents = m.parents
        for ref in parents:
            links.union(node, f"id:{ref}")
        if not parents and m.subject_key:
            links.union(node, f"subject:{m.subject_key}")
    groups: dict[str, list[Message]] = defaultdict(list)
    for m in messages:
        groups[links.find(_node(m))].append(m)
    thread_of: dict[str, str] = {}
    for members in groups.values():
        thread = _root_id(members, by_id)
        for m in members:
            thread_of[m.key] = thread
    return thread_of


def _root_id(members: list[Message], by_id: dict[str, Message]) -> str:
    roots = [m for m in members if not m.parents]
    if roots:
        root = min(roots, key=lambda m: (m.reply_subject, m.stamp, m.message_id or "~", m.key))
        if root.message_id:
            return root.message_id
        return f"subject:{root.subject_key}" if root.subject_key else root.key
    # The first message is missing: the referenced ids with no known parent are candidates; the
    # earliest messages' first reference decides between several.
    ordered = sorted(members, key=lambda m: (m.stamp, m.key))
    for m in ordered:
        for ref in m.parents:
            known = by_id.get(ref)
            if known is None or not known.parents:
                return ref
    return ordered[0].parents[0]


def _stamp(value: object) -> float:
    if isinstance(value, datetime | pd.Timestamp) and not pd.isna(value):
        return value.timestamp()
    return _NO_STAMP


def message_of(key: str, meta: dict[str, str], title: str | None, stamp: object) -> Message | None:
    """The `Message` of an item or result row, from the `meta` the e-mail reader writes; None when the
    row is no e-mail (no Message-ID, references, In-Reply-To or subject key)."""
    message_id = meta.get("message_id", "")
    references = meta.get("references", "").split()
    in_reply_to = meta.get("in_reply_to", "")
    subject = meta.get("subject_key", "")
    if not (message_id or references or in_reply_to or subject):
        return None
    reply = bool(title) and subject != " ".join(str(title).lower().split())
    return Message(key, message_id, references, in_reply_to, subject, reply, _stamp(stamp))


def thread_items(items: Sequence[Item]) -> None:
    """Set each e-mail item's `thread` to its conversation's root id (in place); others are left alone."""
    messages = [m for item in items if (m := message_of(item.id, item.meta, item.title, item.timestamp))]
    resolved = resolve_threads(messages)
    for item in items:
        if item.id in resolved:
            item.thread = resolved[item.id]
