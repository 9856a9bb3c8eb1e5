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

    One person known under several names (an address, a private address, display names) is one
    entry that lists them all, as a list or as `{Name: [aliases]}`; every alias then matches the
    team, and `pipeline.aggregate.people` counts them as one person::

        teams:
          field:
            people:
              - [anna.hartmann@acme.example, "Anna Hartmann", "Hartmann, Anna"]
              - Bob Lee: [bob@acme.example, robert.lee@gmail.com]
        people:            # aliases of people in no team's list (optional)
          Dan Ode: [dan@acme.example, dano@gmail.com]

    CSV form: a header `kind,key,team` with kind one of `person`, `thread`, `path`, or `alias`
    (then `team` holds the person's canonical name and `key` one alias of it).
    """

    people: dict[str, str] = field(default_factory=dict)
    threads: dict[str, str] = field(default_factory=dict)
    paths: list[tuple[str, str]] = field(default_factory=list)
    aliases: list[list[str]] = field(default_factory=list)  # each list: the names of one person

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
                if kind == "alias":
                    rules._add_alias([team, key])
                    continue
                rules._add(kind, key, team, f"{path}:{n}")
            return rules
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ValueError(f"teams file {path}: not valid YAML{where}: {problem}") from None
        if isinstance(doc, dict) and isinstance(doc.get("people"), dict) and "teams" in doc:
            for entry in doc["people"].items():
                rules._add_alias(_names(dict([entry]), path))
        teams = doc.get("teams", doc) if isinstance(doc, dict) else None
        if not isinstance(teams, dict):
            raise ValueError(f"{path}: expected a mapping of team names under 'teams'")
        for team, spec in teams.items():
            if not isinstance(spec, dict):
                raise ValueError(f"{path}: team {team!r} must map to people/threads/paths lists")
            for kind, keys in spec.items():
                if keys is not None and not isinstance(keys, list):
                    raise ValueError(f"{path}: team {team!r}: {kind} must be a list, e.g. {kind}: [{keys}]")
                for key in keys or []:
                    if isinstance(key, list | dict):  # one person under several names
                        names = _names(key, path)
                        if PLURALS.get(kind, kind) != "person":
                            raise ValueError(f"{path}: team {team!r}: only people take a list of aliases")
                        rules._add_alias(names)
                        for name in names:
                            rules._add("person", name, str(team), str(path))
                        continue
                    rules._add(PLURALS.get(kind, kind), str(key), str(team), str(path))
        return rules

    def _add_alias(self, names: list[str]) -> None:
        names = [n.strip() for n in names if n and n.strip()]
        if len(names) > 1:
            self.aliases.append(names)

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


def _names(entry: list | dict, where: Path) -> list[str]:
    """The names of one person: a list of aliases, or `{Name: [aliases]}`."""
    if isinstance(entry, list):
        return [str(name) for name in entry if not isinstance(name, list | dict)]
    names: list[str] = []
    for name, aliases in entry.items():
        names.append(str(name))
        if isinstance(aliases, str):
            aliases = [aliases]
        if not isinstance(aliases, list):
            raise ValueError(f"{where}: the aliases of {name!r} must be a list")
        names.extend(str(a) for a in aliases if not isinstance(a, list | dict))
    return names


def assign_team(item: Item, rules: TeamRules | None, fallback: str | None) -> str | None:
    """The team by the module's precedence; `fallback` is the top-level folder under the input."""
    return (rules.match(item) if rules else None) or item.team or fallback
