"""The built-in catalogue of topic filters (``created_by`` NULL), inserted on start by
:func:`ensure_default_topics`. Phrases follow the matching rules of
:mod:`aggregator.accounts.topic_filters`.

Each filter's precision is measured on 200 real papers of 2026-06-08..12 labelled by hand
(``tests/data/builtin_topic_labels.json``, ``tests/test_builtin_topics.py``); every filter is
at least 0.8. Phrases that abstracts use in passing ("reasoning model", "pruning",
"probing", "manipulation", "agentic", "preference optimization") were replaced by ones that
name the topic, which trades recall for precision: LLM reasoning and efficient inference
match far fewer papers than before (26 and 16 in that week, from 106 and 57)."""

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
                "large reasoning model",
                "long chain-of-thought",
                "chain-of-thought reasoning",
                "test-time compute",
                "overthinking",
                "reasoning budget",
                "chain-of-thought budget",
                "math reasoning",
                "reasoning in large language",
                "reasoning capabilities of large language",
            ],
        ),
        "Chain-of-thought, test-time compute and reasoning in large language models.",
    ),
    (
        _tf(
            "rl-for-llms",
            "RL for LLMs",
            [
                "reinforcement learning from human feedback",
                "grpo",
                "rlvr",
                "verifiable reward",
                "reward model",
                "direct preference optimization",
                "reinforcement learning for large language",
                "reinforcement learning for llm",
                "llm reinforcement learning",
                "process reward",
            ],
            negative=[
                "video generation",
                "image generation",
                "super-resolution",
                "text-to-image",
                "diffusion model",
                "image editing",
                "autonomous driving",
                "self-distillation",
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
                "post-training quantization",
                "weight quantization",
                "quantization-aware",
                "quantized llm",
                "quantized model",
                "low-bit quantization",
                "4-bit",
                "2-bit",
                "speculative decoding",
                "kv cache compression",
                "kv cache eviction",
                "model compression",
                "structured pruning",
                "token pruning",
                "layer pruning",
                "network pruning",
                "weight pruning",
                "magnitude pruning",
                "sparse attention",
                "attention skipping",
                "efficient llm inference",
                "llm serving",
                "inference acceleration",
                "accelerating inference",
            ],
            negative=["vector quantization", "lora"],
        ),
        "Quantisation, pruning, speculative decoding, KV caches: making models cheaper to run.",
    ),
    (
        _tf(
            "interpretability",
            "Interpretability",
            [
                "mechanistic interpretability",
                "sparse autoencoder",
                "activation steering",
                "steering vector",
                "activation patching",
                "probing classifier",
                "internal representations",
                "residual stream",
                "circuit discovery",
                "feature attribution",
                "logit lens",
                "layerwise probing",
                "representation engineering",
                "explainability platform",
                "explainable ai",
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
                "llm-based agent",
                "agentic system",
                "agentic framework",
                "agentic workflow",
                "agentic search",
                "agentic task",
                "tool use",
                "web agent",
                "gui agent",
                "computer-use",
                "computer use agent",
                "autonomous agent",
                "multi-agent system",
                "multi-agent framework",
                "multi-agent debate",
                "agent framework",
                "deep research",
                "tool calling",
                "agent benchmark",
                "self-evolving agent",
            ],
            negative=["multi-agent reinforcement learning", "physical tool"],
        ),
        "LLM agents: tool use, planning, multi-agent systems, web and computer use.",
    ),
    (
        _tf(
            "robotics",
            "Robotics",
            [
                "robot",
                "robotic manipulation",
                "dexterous manipulation",
                "manipulation task",
                "manipulation policy",
                "grasping",
                "embodied agent",
                "embodied ai",
                "vision-language-action",
                "locomotion",
                "humanoid",
                "tactile",
                "robot learning",
            ],
            categories=["cs.RO"],
        ),
        "Robot learning, manipulation, locomotion and embodied AI (and everything in cs.RO).",
    ),
)


def ensure_default_topics(session: Session, now: dt.datetime | None = None) -> int:
    """Insert the built-in topic filters that are missing (by slug) and bring stored built-in
    ones (``created_by`` NULL) up to date with :data:`DEFAULT_TOPICS` (their criteria are
    revised when measured imprecise; readers cannot edit them). Safe to run concurrently from
    several instances. Returns how many were added."""
    rows = {r.slug: r for r in session.scalars(sa.select(Topic))}
    new = [
        {
            **_topic_values(t),
            "description": d,
            "created_by": None,
            "created_at": now or utcnow(),
            "shared": True,
        }
        for t, d in DEFAULT_TOPICS
        if t.slug not in rows
    ]
    for t, d in DEFAULT_TOPICS:
        row = rows.get(t.slug)
        if row is None or row.created_by is not None:
            continue
        for key, value in {**_topic_values(t), "description": d}.items():
            if getattr(row, key) != value:
                setattr(row, key, value)
    if new:
        conn = session.connection()
        conn.execute(insert(conn, Topic.__table__).on_conflict_do_nothing(index_elements=["slug"]), new)
    session.flush()
    return len(new)
