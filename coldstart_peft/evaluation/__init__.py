"""Evaluation: ranking metrics, cold-start evaluators and no-fine-tuning baselines."""

from coldstart_peft.evaluation.baselines import (
    BASELINES,
    Baseline,
    HybridBaseline,
    PopularityBaseline,
    TfidfBaseline,
    ZeroShotBaseline,
    evaluate_baseline,
    make_baseline,
)
from coldstart_peft.evaluation.audit import target_audit
from coldstart_peft.evaluation.full_catalog import FULL_CATALOG_KS, evaluate_full_catalog
from coldstart_peft.evaluation.full_pool import evaluate_baseline_full_pool, known_items, pool_ranks
from coldstart_peft.evaluation.metrics import (
    auc,
    bootstrap_ci,
    hit_rate_at_k,
    log_loss,
    metrics_from_ranks,
    mrr,
    ndcg_at_k,
    paired_bootstrap,
    pointwise_auc,
    pointwise_metrics,
    ranking_metrics,
    summarize,
)
from coldstart_peft.evaluation.pointwise import evaluate_pointwise
from coldstart_peft.evaluation.ranking import (
    evaluate_by_segment,
    evaluate_ranking,
    metrics_from_case_ranks,
    metrics_from_scores,
    ranks_from_scores,
    score_cases,
    segment_report,
)

__all__ = [
    "target_audit", "evaluate_baseline_full_pool", "known_items", "pool_ranks",
    "BASELINES", "Baseline", "HybridBaseline", "PopularityBaseline", "TfidfBaseline", "ZeroShotBaseline",
    "evaluate_baseline", "make_baseline", "FULL_CATALOG_KS", "evaluate_full_catalog", "metrics_from_ranks",
    "auc", "bootstrap_ci", "evaluate_by_segment", "evaluate_pointwise", "evaluate_ranking", "hit_rate_at_k",
    "log_loss", "metrics_from_case_ranks", "metrics_from_scores", "mrr", "ndcg_at_k", "pointwise_auc", "pointwise_metrics",
    "paired_bootstrap", "ranking_metrics", "ranks_from_scores", "score_cases", "segment_report", "summarize",
]  # fmt: skip
