"""Evaluation: ranking metrics, cold-start evaluators and no-fine-tuning baselines."""

from coldstart_peft.evaluation.metrics import (
    auc,
    bootstrap_ci,
    hit_rate_at_k,
    mrr,
    ndcg_at_k,
    ranking_metrics,
    summarize,
)

__all__ = ["auc", "bootstrap_ci", "hit_rate_at_k", "mrr", "ndcg_at_k", "ranking_metrics", "summarize"]
