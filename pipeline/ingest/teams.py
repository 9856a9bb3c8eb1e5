"""Which team an item belongs to.

Precedence, first match wins: the teams file (path globs, then meeting/thread ids, then people),
then what the format itself says (AMI series, ICSI series, Enron mailbox), then the top-level
folder under the input the item was found in.
"""

from __future__ import annotations

import csv
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.items import Item

MAX_TEAMS_FILE_BYTES = 8 * 1024 * 1024
PLURALS = {"people": "person", "threads": "thread", "paths": "path"}


@dataclass
class TeamRules:
    """Maps people (names or addresses), thread/meeting ids and path globs to team names.

    YAML form::

        teams:
          pricing:
            people: [jeff.dasovich@enron.com, "Jeff Dasovich"]
            threads: [ES2002a]
            paths: ["*/mailboxes/dasovich-j/*"]

    CSV form: a header `kind,key,team` with kind one of `person`, `thread`, `path`.
    """

    people: dict[str, str] = field(default_factory=dict)
    threads: dict[str, str] = field(default_factory=dict)
    paths: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> TeamRules:
        if path.stat().st_size > MAX_TEAMS_FILE_BYTES:
            raise ValueError(f"{path}: teams file over {MAX_TEAMS_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
        rules = cls()
        if path.suffix.lower() == ".csv":
            for n, row in enumerate(csv.DictReader(text.splitlines()), start=2):
                kind, key, team = (row.get(k, "").strip() for k in ("kind", "key", "team"))
                if not (kind and key and team):
                    raise ValueError(f"{path}:{n}: need kind, key and team")
                rules._add(kind, key, team, f"{path}:{n}")
            return rules
        doc = yaml.safe_load(text) or {}
        teams = doc.get("teams", doc) if isinstance(doc, dict) else None
        if not isinstance(teams, dict):
            raise ValueError(f"{path}: expected a mapping of team names under 'teams'")
        for team, spec in teams.items():
            if not isinstance(spec, dict):
                raise ValueError(f"{path}: team {team!r} must map to people/threads/paths lists")
            for kind, keys in spec.items():
                for key in keys or []:
                    rules._add(PLURALS.get(kind, kind), str(key), str(team), str(path))
        return rules

    def _add(self, kind: str, key: str, team: str, where: str) -> None:
        if kind == "person":
            self.people[key.strip().lower()] = team
        elif kind == "thread":
            self.threads[key] = team
        elif kind == "path":
            self.paths.append((key, team))
        else:
            raise ValueError(f"{where}: unknown kind {kind!r} (person, thread or path)")

    def match(self, item: Item) -> str | None:
        for pattern, team in self.paths:
            if fnmatch.fnmatch(item.path, pattern):
                return team
        if item.thread and item.thread in self.threads:
            return self.threads[item.thread]
        for person in [*item.authors, *item.participants]:
            team = self.people.get(person.strip().lower())
            if team:
                return team
        return None


def assign_team(item: Item, rules: TeamRules | None, fallback: str | None) -> str | None:
    """The team by the module's precedence; `fallback` is the top-level folder under the input."""
    return (rules.match(item) if rules else None) or item.team or fallback
