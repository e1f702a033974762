"""The built-in catalogue of topic filters (``created_by`` NULL), inserted on start by
:func:`ensure_default_topics`. Phrases follow the matching rules of
:mod:`aggregator.accounts.topic_filters`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.accounts.topic_filters import _topic_values
from aggregator.clock import utcnow
from aggregator.store.db import insert
from aggregator.store.tables import Topic
from aggregator.types import TopicFilter


def _tf(
    slug: str,
    name: str,
    phrases: Sequence[str] = (),
    categories: Sequence[str] = (),
    negative: Sequence[str] = (),
    match: Literal["any", "all"] = "any",
) -> TopicFilter:
    return TopicFilter(
        slug,
        name,
        tuple(phrases),
        tuple(categories),
        (),
        (),
        tuple(negative),
        match,  # type: ignore[arg-type]
    )


#: The built-in catalogue, created at start when missing (never edited by readers).
DEFAULT_TOPICS: tuple[tuple[TopicFilter, str], ...] = (
    (
        _tf(
            "diffusion-models",
            "Diffusion models",
            [
                "diffusion model",
                "denoising diffusion",
                "score-based generative",
                "flow matching",
                "latent diffusion",
                "diffusion transformer",
            ],
        ),
        "Denoising diffusion, score-based and flow-matching generative models.",
    ),
    (
        _tf(
            "llm-reasoning",
            "LLM reasoning",
            [
                "chain-of-thought",
                "chain of thought",
                "reasoning model",
                "mathematical reasoning",
                "test-time scaling",
                "test-time compute",
                "llm reasoning",
                "reasoning of large language",
                "reasoning in large language",
                "reasoning capabilities",
            ],
        ),
        "Chain-of-thought, test-time compute and reasoning in large language models.",
    ),
    (
        _tf(
            "rl-for-llms",
            "RL for LLMs",
            [
                "rlhf",
                "reinforcement learning from human feedback",
                "grpo",
                "rlvr",
                "verifiable reward",
                "reward model",
                "direct preference optimization",
                "preference optimization",
                "reinforcement learning for large language",
                "reinforcement learning for llm",
            ],
        ),
        "Reinforcement learning and preference optimisation to train language models.",
    ),
    (
        _tf(
            "vision-language",
            "Vision-language",
            [
                "vision-language",
                "vision language model",
                "multimodal large language",
                "vlm",
                "mllm",
                "visual question answering",
                "image captioning",
                "multimodal llm",
            ],
        ),
        "Vision-language models, multimodal LLMs, VQA and captioning.",
    ),
    (
        _tf(
            "efficient-inference",
            "Efficient inference",
            [
                "quantization",
                "speculative decoding",
                "kv cache",
                "kv-cache",
                "efficient inference",
                "inference acceleration",
                "model compression",
                "low-bit",
                "pruning",
                "sparse attention",
            ],
        ),
        "Quantisation, pruning, speculative decoding, KV caches: making models cheaper to run.",
    ),
    (
        _tf(
            "interpretability",
            "Interpretability",
            [
                "interpretability",
                "mechanistic",
                "sparse autoencoder",
                "explainability",
                "probing",
                "feature attribution",
                "circuit discovery",
            ],
        ),
        "Mechanistic interpretability, probing, attribution and explanations.",
    ),
    (
        _tf(
            "agents",
            "Agents",
            [
                "llm agent",
                "language agent",
                "agentic",
                "multi-agent",
                "tool use",
                "tool-use",
                "web agent",
                "autonomous agent",
                "computer-use",
            ],
        ),
        "LLM agents: tool use, planning, multi-agent systems, web and computer use.",
    ),
    (
        _tf(
            "robotics",
            "Robotics",
            ["robot", "manipulation", "embodied", "locomotion", "vision-language-action"],
            categories=["cs.RO"],
        ),
        "Robot learning, manipulation, locomotion and embodied AI (and everything in cs.RO).",
    ),
)


def ensure_default_topics(session: Session, now: dt.datetime | None = None) -> int:
    """Insert the built-in topic filters that are missing (by slug); safe to run concurrently
    from several instances. Returns how many were added."""
    have = set(session.scalars(sa.select(Topic.slug)))
    rows = [
        {**_topic_values(t), "description": d, "created_by": None, "created_at": now or utcnow()}
        for t, d in DEFAULT_TOPICS
        if t.slug not in have
    ]
    if rows:
        conn = session.connection()
        conn.execute(insert(conn, Topic.__table__).on_conflict_do_nothing(index_elements=["slug"]), rows)
    return len(rows)


