"""The data-set scripts on small inputs written here: splitting by whole groups, second readings and
adjudication (build_seci_data.py), and the two e-mail exports that are not RFC 822 (convert_mail_exports.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _pool_row(key: str, split: str, team: str, path: str, text: str, group: str | None = None) -> dict:
    row = {"key": key, "id": f"id-{key}", "split": split, "source": "meeting", "selection": "random", "path": path}
    row |= {"team": team, "text": text, "shortened": False}
    return row | ({"group": group} if group else {})


def test_build_splits_by_group_and_adjudicates(tmp_path: Path) -> None:
    data = tmp_path / "seci"
    (data / "labels").mkdir(parents=True)
    qmsum = "data/meetings/qmsum/ALL/train/x.json"
    rows = [
        _pool_row("k0", "train", "ES2002", qmsum, "we tried the remote and learned how it works"),
        _pool_row("k1", "train", "ES2008", qmsum, "let us get coffee together after the meeting"),
        _pool_row("k2", "dev", "Bmr", "data/meetings/icsi_mrda/database/Bmr005.dadb", "the figures are in the table"),
        _pool_row("k3", "new", "clinton:mills", "data/emails/x.txt", "thanks, great to see you", "clinton:mills"),
        _pool_row("k4", "train", "ES2002", qmsum, "we tried the remote and learned how it works"),  # a duplicate
        _pool_row("k5", "train", "Bmr", "data/meetings/icsi_mrda/database/Bmr001.dadb", "what if the model is wrong"),
    ]
    (data / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    labels = data / "labels"
    first = ("k0\tI", "k1\tS", "k2\tC", "k4\tI", "k5\tE")
    (labels / "batch0.tsv").write_text("".join(f"{line}\t-\th\t0\t\n" for line in first))
    (labels / "round5-0.tsv").write_text("k3\tS\t-\th\t0\t\n")
    (labels / "reread-0.tsv").write_text("k0\tC\t-\tl\t0\t\nk1\tS\t-\th\t0\t\nk3\tS\tC\th\t0\t\n")
    config = tmp_path / "split.yaml"
    config.write_text("dev_unseen: [ami:ES2008, clinton:mills]\n", encoding="utf-8")
    args = ("scripts/build_seci_data.py", "--dir", str(data), "--config", str(config))

    # k0's two readings disagree: its third reading is still to come, in a batch that shows both modes.
    _run(*args, "--adjudication-batches", "1")
    batch = (data / "batches" / "adjudicate-0.txt").read_text(encoding="utf-8")
    assert "=== k0 | meeting | proposed: C or I ===" in batch and "k1" not in batch
    (labels / "adjudicate-0.tsv").write_text("k0\tC\tI\th\t0\t\n")
    out = _run(*args)
    assert "'overturned': 1" in out and "'duplicates dropped': 1" in out

    split = {name: {r["id"]: r for r in map(json.loads, (data / f"{name}.jsonl").open())} for name in ("train", "dev")}
    in_domain = [json.loads(line) for line in (data / "dev_in_domain.jsonl").open()]
    assert set(split["train"]) == {"id-k0", "id-k5"} and set(split["dev"]) == {"id-k1", "id-k3"}
    assert [r["id"] for r in in_domain] == ["id-k2"]  # a dev-part item of a training group
    k0 = split["train"]["id-k0"]
    assert k0["mode"] == "combination" and k0["secondary"] == "internalization" and k0["group"] == "ami:ES2002"
    assert k0["provenance"]["adjudicated"] and [r["mode"] for r in k0["provenance"]["readings"]] == [
        "internalization",
        "combination",
        "combination",
    ]
    assert k0["guide_version"] == 3 and split["train"]["id-k5"]["guide_version"] == 2
    agreement = json.loads((data / "agreement.json").read_text(encoding="utf-8"))["all"]
    assert agreement["items"] == 3 and agreement["per_class"]["socialization"]["agreement"] == 1.0
    assert agreement["per_class"]["internalization"] == {"first": 1, "second": 0, "both": 0, "agreement": 0.0}


def test_an_audit_replaces_the_label_where_its_readings_agree_and_else_by_its_third(tmp_path: Path) -> None:
    data = tmp_path / "seci"
    (data / "labels").mkdir(parents=True)
    qmsum = "data/meetings/qmsum/ALL/train/x.json"
    texts = ("we practised with the pen on the board", "how was the leadership", "we drew our favourite animals")
    rows = [_pool_row(f"k{n}", "train", "ES2003", qmsum, text) for n, text in enumerate(texts)]
    (data / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    labels = data / "labels"
    (labels / "batch0.tsv").write_text("k0\tS\t-\th\t0\t\nk1\tE\t-\th\t0\t\nk2\tS\t-\th\t0\t\n")
    (labels / "audit-a0.tsv").write_text("k0\tI\t-\th\t0\t\nk1\tS\t-\tl\t0\t\n")
    (labels / "audit-b0.tsv").write_text("k0\tI\tS\tl\t0\t\nk1\tE\t-\th\t0\t\n")
    config = tmp_path / "split.yaml"
    config.write_text("dev_unseen: []\n", encoding="utf-8")
    args = ("scripts/build_seci_data.py", "--dir", str(data), "--config", str(config))

    _run(*args, "--audit-adjudication-batches", "1")
    batch = (data / "batches" / "audit-adjudicate-0.txt").read_text(encoding="utf-8")
    assert "=== k1 | meeting | proposed: S or E ===" in batch and "k0" not in batch and "k2" not in batch
    (labels / "audit-adjudicate-0.tsv").write_text("k1\tS\t-\th\t0\t\n")
    out = _run(*args)
    assert "'audit: label changed': 2" in out

    train = {r["id"]: r for r in map(json.loads, (data / "train.jsonl").open())}
    k0, k1, k2 = (train[f"id-k{n}"] for n in range(3))
    assert k0["mode"] == "internalization" and not k0["provenance"]["adjudicated"]
    assert [r["reader"] for r in k0["provenance"]["readings"]] == ["batch0", "audit-a0", "audit-b0"]
    assert k1["mode"] == "socialization" and k1["provenance"]["adjudicated"]
    assert [r["mode"] for r in k1["provenance"]["readings"]] == [
        "externalization",
        "socialization",
        "externalization",
        "socialization",
    ]
    assert k2["mode"] == "socialization" and len(k2["provenance"]["readings"]) == 1  # not audited
    audit = json.loads((data / "agreement.json").read_text(encoding="utf-8"))
    assert audit["round 8: audit of AMI tools practice and closing evaluations"]["items"] == 2


def test_the_audit_selects_tools_practice_in_kick_offs_and_evaluation_in_closing_meetings() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_label_pool import in_audit

    def row(meeting: str, text: str) -> dict:
        return {"id": f"train/{meeting}.json#seg3", "text": text}

    tools = "take the pen, draw on the whiteboard, then erase it"
    evaluation = "how did we do on leadership and on team work?"
    assert in_audit(row("ES2003a", tools)) and not in_audit(row("ES2003b", tools))
    assert in_audit(row("TS3012d", evaluation)) and not in_audit(row("TS3012a", evaluation))
    assert not in_audit(row("ES2003d", "leadership"))  # one cue is not enough
    assert not in_audit({"id": "Bmr001.dadb#seg3", "text": tools})  # AMI only


def test_build_refuses_a_later_reading_without_a_first(tmp_path: Path) -> None:
    data = tmp_path / "seci"
    (data / "labels").mkdir(parents=True)
    rows = [_pool_row("k0", "train", "x", "data/documents/python_peps/peps/pep-0001.rst", "a", "peps")]
    (data / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (data / "labels" / "reread-0.tsv").write_text("k0\tC\t-\th\t0\t\n")
    config = tmp_path / "split.yaml"
    config.write_text("dev_unseen: []\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "scripts/build_seci_data.py", "--dir", str(data), "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "without a first reading" in done.stderr


CLINTON = """      UNCLASSIFIED U.S. Department of State Case No. F-2014-20439 Doc No. C05760000 Date: 06/30/2015
                                                                          RELEASE IN
                                                                          PART B6
From:                             Mills, Cheryl D <MillsCD@state.gov>
Sent:                             Saturday, May 30, 2009 7:57 AM
To:                               H
Subject                           Re: Brazil visit


Great to see you yesterday - let's have lunch next week when you are back.


     Original Message
From: Reines, Philippe I
Sent: Sat May 30 07:31:10 2009
Subject: Brazil visit

This earlier message is quoted and must not be part of the item.
"""

PST = """<html><body><table id=header_table>
<tr id="from_row"><td>From: </td><td>Quenet  Joe &lt;Joe.Quenet@ENRON.com&gt;</td></tr>
<tr id="to_row"><td>To: </td><td>King  Jeff &lt;Jeff.King@ENRON.com&gt;</td></tr>
<tr id="date_row"><td>Date: </td><td>18/01/2002 02:02:46 PM</td></tr>
<tr id="subject_row"><td>Subject: </td><td>RE: curves &amp; deals</td></tr>
</table><hr><div id=msg_body>
I ran the new curve model this morning and now I see why the deals moved.<br>
<br>
-----Original Message-----<br>
From: King, Jeff<br>
Sent: Friday, January 18, 2002 1:00 PM<br>
To: Quenet, Joe<br>
Subject: curves<br>
<br>
Quoted text that is not the item.<br>
</div></body></html>
"""


def test_convert_mail_exports(tmp_path: Path) -> None:
    clinton = tmp_path / "clinton"
    (clinton / "data/docs/text/R1").mkdir(parents=True)
    (clinton / "data/docs/text/R1/C05760000.txt").write_text(CLINTON, encoding="utf-8")
    (clinton / "manifest.csv").write_text("path,from\ndata/docs/text/R1/C05760000.txt,x\n", encoding="utf-8")
    _run("scripts/convert_mail_exports.py", "clinton", str(clinton), "--out", str(tmp_path / "c.jsonl"))
    [row] = [json.loads(line) for line in (tmp_path / "c.jsonl").open()]
    assert row["id"] == "clinton:C05760000" and row["group"] == "clinton:mills" and row["source"] == "email"
    assert row["text"].startswith("Re: Brazil visit") and "lunch next week" in row["text"]
    assert "quoted" not in row["text"] and "UNCLASSIFIED" not in row["text"]
    assert row["timestamp"] == "2009-05-30T07:57:00+00:00" and row["thread"] == "brazil visit"

    pst = tmp_path / "pst"
    (pst / "mail/quenet-j/Sent").mkdir(parents=True)
    (pst / "mail/quenet-j/Sent/1.html").write_text(PST, encoding="utf-8")
    header = "path,mailbox,folder,from,to,cc,date_ddmmyyyy,subject,body_chars,likely_bulk_or_automated\n"
    line = "mail/quenet-j/Sent/1.html,quenet-j,Sent,x,y,,18/01/2002 02:02:46 PM,RE: curves,10,0\n"
    (pst / "manifest.csv").write_text(header + line, encoding="utf-8")
    _run("scripts/convert_mail_exports.py", "enron-pst", str(pst), "--out", str(tmp_path / "p.jsonl"))
    [row] = [json.loads(line) for line in (tmp_path / "p.jsonl").open()]
    assert row["group"] == "enron-pst:quenet-j" and row["timestamp"] == "2002-01-18T14:02:46+00:00"
    assert row["text"].startswith("RE: curves & deals") and "now I see why" in row["text"]
    assert "Quoted text" not in row["text"] and row["bulk"] is False
