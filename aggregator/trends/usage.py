"""Where a gram sits in the text: positional rules of the lexicon (:mod:`.lexicon`) that tell a
piece or an attribute of a topic from the topic itself, each from counts over the lexicon's
sample (``cf``: occurrences of every counted 1..4-gram; token lists with ``_BREAK`` between
runs).

* :func:`right_parts`: phrases mostly after some content word ("use agent" of "computer use
  agent" and "tool use agent");
* :func:`connector_fragments`: phrases mostly next to one connector ("the art performance");
* :func:`bound_words`: words mostly after a content word ("modal" of "cross modal");
* :func:`modifiers`: words and phrases mostly right before a content word ("medical" image,
  "hierarchical" feature, "multi turn" dialogue, "long horizon" task): they say which kind of
  thing, the thing and its kind are the topic (the compounds are terms when they are topics).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from aggregator.trends.terms import _BREAK, _NUMBER_UNIT, CONNECTORS

#: A gram this share of whose occurrences sit inside one longer gram, or (a phrase) follow some
#: content word, is a piece of longer terms.
FRAGMENT_SHARE = 0.8
#: Grams in fewer sampled items are not terms.
MIN_DF = 5


def right_parts(grams: Iterable[str], cf: Counter[str]) -> set[str]:
    """Phrases that are mostly the right part of longer phrases, whatever precedes them: ≥
    :data:`FRAGMENT_SHARE` of their occurrences follow a content word ("use agent" after
    "computer" or "tool"). Single words are left alone, and so is a phrase after a size
    such as "3d" ("gaussian splatting")."""
    ext: Counter[str] = Counter()
    for g, c in cf.items():
        first, _, tail = g.partition(" ")
        inner = " " in tail and tail.partition(" ")[0] not in CONNECTORS and first not in CONNECTORS
        if inner and not _NUMBER_UNIT.fullmatch(first):  # "3d gaussian splatting" keeps its tail
            ext[tail] += c
    return {g for g in grams if " " in g and ext.get(g, 0) >= FRAGMENT_SHARE * cf[g]}


#: A phrase this share of whose occurrences have the same connector word just before or just
#: after it is a piece of a longer phrase: "art performance" is always "the art performance"
#: ("state of the art performance", longer than the counted grams).
CONNECTOR_SHARE = 0.8


def connector_fragments(
    token_lists: Sequence[Sequence[str]], phrases: set[str], cf: Counter[str]
) -> set[str]:
    """Phrases (of ``phrases``) with ≥ :data:`CONNECTOR_SHARE` of their occurrences next to one
    connector word on the same side. Counting never begins or ends a
    gram with a connector, so :func:`aggregator.trends.lexicon._fragments` cannot see these longer phrases."""
    near: Counter[tuple[str, str, int]] = Counter()
    for tokens in token_lists:
        n = len(tokens)
        for i, t in enumerate(tokens):
            if t not in CONNECTORS:
                continue
            for k in (2, 3):  # the phrases right after the connector, and right before it
                after = " ".join(tokens[i + 1 : i + 1 + k])
                if i + k < n and after in phrases:
                    near[after, t, 0] += 1
                before = " ".join(tokens[max(i - k, 0) : i])
                if i >= k and before in phrases:
                    near[before, t, 1] += 1
    return {g for (g, _, _), c in near.items() if c >= CONNECTOR_SHARE * cf[g]}


#: A single word this share of whose occurrences follow a content word is the second part of
#: compounds ("modal" of "cross modal" and "multi modal", "horizon" of "long horizon",
#: "splatting"), not a topic of its own; the compounds are terms.
BOUND_SHARE = 0.9


def bound_words(token_lists: Sequence[Sequence[str]], cf: Counter[str]) -> set[str]:
    """Single words with ≥ :data:`BOUND_SHARE` of their occurrences right after a content word."""
    after: Counter[str] = Counter()
    for tokens in token_lists:
        after.update(
            b for a, b in zip(tokens, tokens[1:], strict=False) if a != _BREAK and a not in CONNECTORS
        )
    return {w for w, c in after.items() if w in cf and c >= BOUND_SHARE * cf[w] and cf[w] >= MIN_DF}


#: A word or phrase this share of whose occurrences come right before another content word is a
#: modifier: it names a kind ("medical" 0.96, "hierarchical" 0.96, "causal" 0.94, "multi turn"
#: 0.93, "long horizon" 0.91, "zero shot" 0.84, "real time" 0.83, "training free" 0.83 on the
#: 8,000-paper sample of the replayed data), not a topic; topics are written as nouns on their own
#: too ("world model" 0.25, "chain of thought" 0.44, "hallucination" 0.44, "camera" 0.73,
#: "speech" 0.67, "mixture of experts" 0.35).
MODIFIER_SHARE = 0.8
#: Modifiers the field uses as the name of a topic: their use cannot tell them from "physical"
#: or "hierarchical" ("agentic" is 0.91 before a noun, as "physical" is 0.92; "multi task" 0.98,
#: as "multi step" 0.96), what the field calls a topic can: issue 16 names both among the topics
#: a researcher expects to see. Documented hand list, kept to what the statistics cannot show.
TOPIC_MODIFIERS = frozenset(["agentic", "multi task"])


def modifiers(grams: Iterable[str], cf: Counter[str]) -> set[str]:
    """Grams of up to three words (of ``grams``) with ≥ :data:`MODIFIER_SHARE` of their
    occurrences right before a content word (one more content word makes a counted gram of at
    most four words: ``cf["medical image"]`` counts "medical" before "image"), except
    :data:`TOPIC_MODIFIERS`."""
    before: Counter[str] = Counter()
    for g, c in cf.items():
        head, _, last = g.rpartition(" ")
        if head and last not in CONNECTORS and head.rpartition(" ")[2] not in CONNECTORS:
            before[head] += c
    return {
        g
        for g in grams
        if g.count(" ") < 3 and g not in TOPIC_MODIFIERS and before.get(g, 0) >= MODIFIER_SHARE * cf[g]
    }
