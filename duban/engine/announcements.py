"""What the county office must be told before it is too late, on its home page, in the weekly
summary and by `duban tick`: a year counted on the provisional calendar (its notice not yet
imported), a plan whose window is about to end. Each is said in Chinese, then English."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from duban.engine.plans_end import EndingPlan


@dataclass(frozen=True, kw_only=True)
class Announcement:
    kind: str  # calendar | plan-end
    zh: str
    en: str


def plan_end_announcement(plan: EndingPlan) -> Announcement:
    """A plan whose window ends soon: when, and which duties stop with it (those no later
    plan continues)."""
    when_zh = "今天" if plan.days_left == 0 else f"还有 {plan.days_left} 天"
    when_en = "today" if plan.days_left == 0 else f"in {plan.days_left} days"
    stopping = plan.stopping
    zh = (
        f"方案《{plan.title}》（{plan.document}）将于 {plan.valid_until} 期满（{when_zh}）："
        f"{len(stopping)} 项职责届时停止"
        + ("，后续方案未接续" if stopping else "，均已由后续方案接续")
        + "。如需继续，请起草下一年度方案：duban plan roll。"
    )
    en = (
        f"plan {plan.code} ({plan.document}) ends on {plan.valid_until} ({when_en}): "
        f"{len(stopping)} of its {len(plan.duties)} duties stop then, no later plan continuing "
        "them; to go on, draft next year's plan with `duban plan roll`."
    )
    return Announcement(kind="plan-end", zh=zh, en=en)
