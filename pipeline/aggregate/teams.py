"""A teams file that reassigns result rows to teams (`seci timeline --teams FILE`).

Formats (all matching is case-insensitive, and every pattern is an `fnmatch` glob, so a plain
string matches exactly):

* YAML, a mapping of team to patterns: `{Design: [alice@example.com, "ES2002*", "*/design/*"]}`,
  optionally under a top-level `teams:` key; or a list of `{match: PATTERN, team: NAME}`.
* CSV with two columns, pattern then team; a first row `match,team` (or `pattern,team`) is a header.

A row's team is decided by the first rule, in file order, that matches, trying first where the item
came from (its thread, its `meta["meeting"]`, its path; a path pattern without a leading `/` or `*`
also matches any trailing part of the path), then its authors, then its participants. Rows that no
rule matches keep the team they had.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

MAX_TEAMS_FILE_BYTES = 4 * 1024 * 1024


class TeamsFileError(ValueError):
    """The teams file could not be read or has the wrong shape."""


@dataclass(frozen=True)
class TeamRule:
    pattern: str  # lower-cased glob
    team: str


@dataclass(frozen=True)
class TeamRules:
    rules: tuple[TeamRule, ...]

    def _first(self, values: Iterable[str]) -> str | None:
        lowered = [v.lower() for v in values if v]
        for rule in self.rules:
            if any(fnmatchcase(value, rule.pattern) for value in lowered):
                return rule.team
        return None

    def _path_match(self, path: str) -> str | None:
        path = path.replace("\\", "/").lower()
        for rule in self.rules:
            if fnmatchcase(path, rule.pattern):
                return rule.team
            if not rule.pattern.startswith(("/", "*")) and fnmatchcase(path, "*/" + rule.pattern):
                return rule.team
        return None

    def team_for(
        self,
        *,
        path: str | None = None,
        thread: str | None = None,
        meeting: str | None = None,
        authors: Iterable[str] = (),
        participants: Iterable[str] = (),
    ) -> str | None:
        """The team the first matching rule gives (order in the module docstring), else None."""
        return (
            self._first([thread or "", meeting or ""])
            or (self._path_match(path) if path else None)
            or self._first(authors)
            or self._first(participants)
        )


def _rules_from_yaml(data: object) -> list[TeamRule]:
    if isinstance(data, dict) and set(data) == {"teams"}:
        data = data["teams"]
    rules: list[TeamRule] = []
    if isinstance(data, dict):
        for team, patterns in data.items():
            if isinstance(patterns, str):
                patterns = [patterns]
            if not isinstance(patterns, list):
                raise TeamsFileError(f"team {team!r}: expected a list of patterns")
            rules.extend(TeamRule(str(p).strip().lower(), str(team)) for p in patterns if str(p).strip())
    elif isinstance(data, list):
        for entry in data:
            if not (isinstance(entry, dict) and "match" in entry and "team" in entry):
                raise TeamsFileError("list entries must be mappings with 'match' and 'team'")
            rules.append(TeamRule(str(entry["match"]).strip().lower(), str(entry["team"])))
    else:
        raise TeamsFileError("expected a mapping of team to patterns, or a list of {match, team}")
    return rules


def _rules_from_csv(text: str) -> list[TeamRule]:
    rules: list[TeamRule] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise TeamsFileError(f"line {number}: expected 'pattern,team'")
        if number == 1 and cells[0].lower() in ("match", "pattern") and cells[1].lower() == "team":
            continue
        rules.append(TeamRule(cells[0].lower(), cells[1]))
    return rules


def load_team_rules(path: Path) -> TeamRules:
    """Read a YAML (`.yaml`/`.yml`) or CSV teams file; raises TeamsFileError when it is unusable."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_TEAMS_FILE_BYTES:
            raise TeamsFileError(f"{path}: over {MAX_TEAMS_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise TeamsFileError(f"{path}: {err}") from err
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            rules = _rules_from_yaml(yaml.safe_load(text))
        except yaml.YAMLError as err:
            raise TeamsFileError(f"{path}: not valid YAML ({err})") from err
    else:
        rules = _rules_from_csv(text)
    if not rules:
        raise TeamsFileError(f"{path}: no rules")
    return TeamRules(tuple(rules))
