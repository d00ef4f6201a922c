"""APScheduler 3 wiring: one job per source, never overlapping itself.

Each source runs on its interval or cron trigger with jitter; ``max_instances=1``
and ``coalesce=True`` mean a slow pass is never joined by a second one of the
same source and a backlog of missed runs collapses into one; a run later than
``misfire_grace_s`` is skipped (and logged). Every source runs once right at
start-up. Per-host politeness is enforced by the shared fetcher, across sources.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ingest.config import Schedule, SourceSpec

__all__ = ["build_scheduler", "trigger_for"]

logger = logging.getLogger(__name__)


def trigger_for(schedule: Schedule) -> BaseTrigger:
    """The APScheduler trigger of a schedule.

    >>> t = trigger_for(Schedule(interval_s=60, jitter_s=5))
    >>> t.interval.total_seconds(), t.jitter
    (60.0, 5)
    """
    if schedule.cron is not None:
        return schedule.cron_trigger()
    return IntervalTrigger(
        seconds=schedule.interval_s or 300.0,
        timezone=UTC,
        jitter=int(schedule.jitter_s) or None,
    )


def build_scheduler(
    specs: Iterable[SourceSpec],
    job: Callable[[str], None],
    *,
    max_workers: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackgroundScheduler:
    """A not-yet-started scheduler calling ``job(source_name)`` per source."""
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )
    for spec in specs:
        scheduler.add_job(
            job,
            trigger_for(spec.schedule),
            args=[spec.name],
            id=spec.name,
            name=f"crawl {spec.name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(spec.schedule.misfire_grace_s),
            next_run_time=now(),
        )
    scheduler.add_listener(_on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR)
    return scheduler


def _on_event(event: JobEvent) -> None:
    if event.code == EVENT_JOB_MISSED:
        logger.warning(
            "%s: run missed its start time by more than the grace period; skipped", event.job_id
        )
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        logger.info("%s: previous pass still running; this run skipped", event.job_id)
    else:
        logger.error("%s: pass crashed: %r", event.job_id, getattr(event, "exception", None))
