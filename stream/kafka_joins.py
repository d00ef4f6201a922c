"""Keep a consumer-group join that finished between two polls (kafka-python 3.0 defect).

kafka-python 3.0 runs a consumer's network on an IO thread and keeps the
JoinGroup -> SyncGroup exchange as a task across ``poll()`` calls. When that
task finishes while the consumer's thread is not inside ``poll()`` (scoring a
batch, committing, starved of CPU), the next ``poll()`` finds it done and sends a
new JoinGroup instead of applying the assignment it carries. The new join can
finish outside ``poll()`` again, and so on: the group never settles, the member
never gets partitions, and on a real cluster every new JoinGroup from the
leader starts another rebalance for the whole group. Seen here as a consumer
left unassigned for a minute on a loaded machine; reproduced by polling for 10 ms
every 0.5 s (``tests/stream/test_kafka_joins.py``).

:func:`keep_finished_joins` wraps ``BaseCoordinator.join_group_async`` so that a
join task that succeeded while nobody awaited it is applied, exactly as the
library applies one it was awaiting; every other case is left to the library.
A join applied late is no staler than one applied on time after a long poll: if
the coordinator expired the member meanwhile, the next heartbeat or commit is
refused and the member joins again (commits refused in between are redelivered
records, never lost ones).
It patches only a library whose join loop still has the defect (checked on its
source), so a fixed kafka-python is left alone.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from kafka.coordinator.base import BaseCoordinator, MemberState

__all__ = ["keep_finished_joins"]

logger = logging.getLogger(__name__)

#: The test in kafka-python's join loop that throws a finished join away.
_DEFECT = "self._join_task is None or self._join_task.is_done"


def _has_defect() -> bool:
    try:
        source = inspect.getsource(BaseCoordinator.join_group_async)
    except (OSError, TypeError, AttributeError):  # no source shipped, or the method is gone
        return False
    return _DEFECT in source


def keep_finished_joins() -> bool:
    """Patch kafka-python's join loop if it has the defect; True when it is (now) patched.

    Idempotent; called when :mod:`stream.kafka` is imported, before any consumer exists.
    """
    current = BaseCoordinator.join_group_async
    if getattr(current, "_finsentinel_keeps_finished_joins", False):
        return True
    if not _has_defect():
        logger.debug("kafka-python's group join keeps finished joins: not patched")
        return False

    async def join_group_async(self: Any, timeout_ms: float | None = None) -> bool:
        task = self._join_task
        if task is not None and task.is_done and task.exception is None:
            # What the library does after awaiting a successful join task.
            logger.debug("group %s: applying a join that finished between polls", self.group_id)
            self._join_task = None
            with self._lock:
                self.rejoining = False
                self.rejoin_needed = False
                self.state = MemberState.STABLE
                self._enable_heartbeat()
            generation = self._generation
            await self._on_join_complete_async(
                generation.generation_id, generation.member_id, generation.protocol, task.value
            )
            return True
        # Not started, still running, or failed: the library's loop handles those
        # (a failed task is retried there, its error's side effects already applied).
        result: bool = await current(self, timeout_ms)
        return result

    join_group_async._finsentinel_keeps_finished_joins = True  # type: ignore[attr-defined]
    join_group_async.__doc__ = current.__doc__
    BaseCoordinator.join_group_async = join_group_async  # type: ignore[method-assign]
    logger.debug("kafka-python's group join patched to keep joins that finish between polls")
    return True
