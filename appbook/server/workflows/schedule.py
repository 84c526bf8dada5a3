"""Due times of a cron expression in a time zone, as UTC instants, correct across DST.

croniter walks *wall-clock* times (naive datetimes) of the trigger's zone; each wall time
becomes an instant with :mod:`zoneinfo`'s ``fold=0`` reading:

* a wall time that happens twice (autumn: 01:30 in New York) fires once, at its first
  occurrence;
* a wall time that never happens (spring: 02:30 in Paris) fires at the instant it would
  have been had the clock not jumped (03:30 CEST), so ``0 2 * * *`` runs at 03:00 CEST
  that day and ``*/30 * * * *`` keeps firing every 30 real minutes;
* two wall times that become one instant fire once (the instant is the key).

Near a transition the wall-time order and the instant order can differ, so there the
search looks :data:`SLACK` either side and keeps the nearest instant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter

SLACK = timedelta(hours=3)  # more than any zone's DST shift (2 h at most)
LIMIT = 100_000  # wall times looked at in one search (a per-second cron near a transition)

__all__ = ["last_due", "next_due"]


def next_due(expr: str, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first due instant strictly after ``after`` (aware), or None if there is none."""
    return _nearest(expr, zone, after, forward=True)


def last_due(expr: str, zone: ZoneInfo, moment: datetime) -> datetime | None:
    """The last due instant at or before ``moment`` (aware), or None if there is none."""
    return _nearest(expr, zone, moment, forward=False)


def _nearest(expr: str, zone: ZoneInfo, moment: datetime, *, forward: bool) -> datetime | None:
    wall = _wall(moment, zone)
    if not forward:
        wall += timedelta(seconds=1)  # get_prev is strict: a due time at moment counts
    if _transition_near(zone, moment):
        wall += -SLACK if forward else SLACK
    walker = croniter(expr, wall)
    best: datetime | None = None
    try:
        for _ in range(LIMIT):
            naive: datetime = walker.get_next(datetime) if forward else walker.get_prev(datetime)
            instant = naive.replace(tzinfo=zone).astimezone(UTC)
            if _beyond(instant, moment, forward) and (
                best is None or _beyond(best, instant, forward)
            ):
                best = instant
            if best is not None and _settled(zone, best, naive):
                return best
    except CroniterBadDateError:  # no such date for years (``0 0 30 2 *``)
        pass
    return best


def _beyond(instant: datetime, moment: datetime, forward: bool) -> bool:
    """Forward: ``instant`` is after ``moment``; backward: it is at or before it."""
    return instant > moment if forward else instant <= moment


def _settled(zone: ZoneInfo, best: datetime, naive: datetime) -> bool:
    """Whether no later wall time can give a nearer instant than ``best``."""
    return not _transition_near(zone, best) or abs(naive - _wall(best, zone)) > SLACK


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _transition_near(zone: ZoneInfo, moment: datetime) -> bool:
    before = (moment - SLACK).astimezone(zone).utcoffset()
    return before != (moment + SLACK).astimezone(zone).utcoffset()
