"""Venue and code-link extraction (aggregator.feeds.venues) on 200 real arXiv comments from
../shared/data/bulk, labelled by hand (tests/data/venue_labels.jsonl), and on the phrasings
issue 13 names; and the fields reaching items, cards and the digest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import bulk_papers

from aggregator.feeds.venues import extract, links_in, venue_in
from aggregator.store.db import session_factory
from aggregator.store.tables import Item

LABELS = [json.loads(line) for line in (Path(__file__).parent / "data" / "venue_labels.jsonl").open()]


def scores() -> tuple[float, float, int]:
    """(precision, recall, predictions) of the venue (name, year, workshop) on the labels."""
    predicted = correct = gold = 0
    for row in LABELS:
        v = venue_in(row["comment"])
        truth = (row["venue"], row["year"], row["workshop"]) if row["venue"] else None
        gold += truth is not None
        if v is not None:
            predicted += 1
            correct += (v.name, v.year, v.workshop) == truth
    return correct / predicted, correct / gold, predicted


def test_precision_on_200_labelled_real_comments() -> None:
    assert len(LABELS) == 200 and len({r["id"] for r in LABELS}) == 200
    precision, recall, predicted = scores()
    assert predicted >= 70
    assert precision >= 0.95 and recall >= 0.85, (precision, recall)


def _held_out(name: str) -> tuple[int, int, int]:
    """(correct, predicted, gold) of the current rules on a held-out set (bench/venue_heldout.py)."""
    held = [json.loads(line) for line in (Path(__file__).parent / "data" / name).open()]
    assert len(held) == 100 and not {r["id"] for r in held} & {r["id"] for r in LABELS}
    predicted = correct = gold = 0
    for row in held:
        v = venue_in(row["comment"])
        truth = (row["venue"], row["year"], row["workshop"]) if row["venue"] else None
        gold += truth is not None
        predicted += v is not None
        correct += v is not None and (v.name, v.year, v.workshop) == truth
    return correct, predicted, gold


def test_held_out_sets_labelled_blind() -> None:
    """Set 2 (2026 slice) was drawn and labelled with today's rules frozen: 52/52. Set 1 (2025
    slice) was blind for the first rules (38/41, 38/44, `bench/venue_heldout.py score 1
    --frozen`); the rules were then changed for its errors, so it is now a development set."""
    assert _held_out("venue_heldout2.jsonl") == (52, 52, 52)
    assert _held_out("venue_heldout.jsonl") == (44, 44, 44)


def test_code_links_on_the_labelled_comments() -> None:
    found = sum(links_in(r["comment"]) == r["links"] for r in LABELS if r["links"])
    assert found >= 12


@pytest.mark.parametrize(
    ("text", "venue", "year", "workshop", "label"),
    [
        ("Accepted at NeurIPS 2025", "NeurIPS", 2025, False, "NeurIPS 2025"),
        ("CVPR 2026 (Oral)", "CVPR", 2026, False, "CVPR 2026 (Oral)"),
        ("To appear in ICLR 2026", "ICLR", 2026, False, "ICLR 2026"),
        ("ACL 2026 Findings", "ACL", 2026, False, "ACL 2026 Findings"),
        ("ICML 2026 Workshop on Foundation Models", "ICML", 2026, True, "ICML 2026 Workshop"),
        ("NeurIPS'25 spotlight", "NeurIPS", 2025, False, "NeurIPS 2025 (Spotlight)"),
        ("Submitted to NeurIPS 2025", None, None, False, None),
        ("Under review at ICLR 2026", None, None, False, None),
        ("12 pages; code for our RSS reader", None, None, False, None),
    ],
)
def test_issue_phrasings(
    text: str, venue: str | None, year: int | None, workshop: bool, label: str | None
) -> None:
    v = venue_in(text)
    got = (v.name, v.year, v.workshop, v.label) if v else (None, None, False, None)
    assert got == (venue, year, workshop, label)


def test_journal_ref_wins_and_links_from_abstract() -> None:
    e = extract(
        "Submitted to ICML 2026", "Transactions on Machine Learning Research (2026)", "Code: github.com/a/b."
    )
    assert e.venue is not None and e.venue.name == "TMLR" and e.columns()["has_code"]
    assert e.links == [{"kind": "code", "url": "https://github.com/a/b"}]


def test_ingest_stores_venue_and_code(engine: sa.Engine) -> None:
    from test_readers import load_papers

    load_papers(engine)
    papers = {p["id"]: p for p in bulk_papers("2026-06-15")}
    with session_factory(engine)() as s:
        rows = s.execute(sa.select(Item.arxiv_id, Item.summary, Item.venue, Item.has_code, Item.links)).all()
    with_code = [r for r in rows if r.has_code]
    assert with_code and all(
        "github" in (r.summary or "").lower()
        or "gitlab" in (r.summary or "").lower()
        or "huggingface" in (r.summary or "").lower()
        for r in with_code
    )
    assert len(papers) == len(rows)


def test_migration_0042_extracts_stored_venues_again(engine: sa.Engine) -> None:
    """Items stored with the first rules get the revised venue (and a stale card) on upgrade."""
    import datetime as dt

    from alembic import command

    from aggregator.store.db import alembic_config, upgrade

    command.downgrade(alembic_config(engine), "0041")
    now = dt.datetime.now(dt.UTC)
    rows = [  # real comments (held-out set 1), with the venue the first rules gave them
        ("2504.06580", "Accepted to SCSL @ ICLR 2025", ("ICLR", 2025, False, "ICLR 2025")),
        ("2510.18740", "Accepted to NeurIPS 2025", ("NeurIPS", 2025, False, "NeurIPS 2025")),
    ]
    with engine.begin() as conn:
        for arxiv_id, comment, (venue, year, workshop, label) in rows:
            conn.execute(
                sa.insert(Item).values(
                    key=f"arxiv:{arxiv_id}",
                    kind="paper",
                    arxiv_id=arxiv_id,
                    title=arxiv_id,
                    comment=comment,
                    published=now,
                    content_hash="x",
                    first_seen_at=now,
                    updated_at=now,
                    card="{}",
                    venue=venue,
                    venue_year=year,
                    venue_workshop=workshop,
                    venue_label=label,
                )
            )
    upgrade(engine)
    with engine.connect() as conn:
        got = {r.arxiv_id: r for r in conn.execute(sa.select(Item))}
    assert (got["2504.06580"].venue_workshop, got["2504.06580"].venue_label) == (True, "ICLR 2025 Workshop")
    assert got["2504.06580"].card is None
    assert got["2510.18740"].card == "{}"  # unchanged venue: the card is kept
