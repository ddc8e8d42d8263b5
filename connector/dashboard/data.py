"""What the dashboard shows, read from the store on the bot loop: people per tenant, deliveries per
hour, failure reasons, recent broadcasts, and who cannot be reached.

The store has no aggregate queries, so this pages through records. Each scan is capped (``MAX_*``)
and the page says when a cap was hit; numbers from a capped scan are a sample, not a total.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from teams_proactive.bot.delivery.broadcasts import BroadcastService
from teams_proactive.bot.delivery.operations import OPERATION_KINDS
from teams_proactive.bot.delivery.service import Caller
from teams_proactive.bot.errors import Rejected
from teams_proactive.bot.model import Delivery, DeliveryStatus, Reference, ReferenceStatus, Surface, now
from teams_proactive.bot.recipients import Person
from teams_proactive.bot.store.base import PersonKey, Store
from teams_proactive.connector.dashboard.preview import first_line

PERSON_SURFACES = (Surface.TEAMS, Surface.TEAMS_COPILOT, Surface.M365_COPILOT)
UNREACHABLE = ("uninstalled", "blocked", "notFound", "expired", "optedOut")
MAX_REFERENCES = 200_000
MAX_DELIVERIES = 100_000
PAGE = 1000
HOUR = 3600
RECENT_BROADCASTS = 20


@dataclass(slots=True)
class TenantRow:
    tenant_id: str
    reachable: int = 0
    unreachable: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return self.reachable + sum(self.unreachable.values())


@dataclass(slots=True)
class HourBucket:
    start: float
    delivered: int = 0
    failed: int = 0


@dataclass(slots=True)
class FailureReason:
    code: str
    count: int
    example: str


@dataclass(slots=True)
class UnreachablePerson:
    tenant_id: str
    name: str | None
    upn: str | None
    email: str | None
    aad_object_id: str | None
    status: str  # uninstalled | blocked | notFound | expired | optedOut
    last_seen: float
    last_error: str | None

    @property
    def label(self) -> str:
        return self.upn or self.email or self.aad_object_id or "(unknown)"


@dataclass(slots=True)
class Overview:
    generated_at: float
    hours: list[HourBucket]
    tenants: list[TenantRow] = field(default_factory=list)
    failure_reasons: list[FailureReason] = field(default_factory=list)
    broadcasts: list[dict[str, Any]] = field(default_factory=list)  # the most recent, newest first
    unreachable: list[UnreachablePerson] = field(default_factory=list)
    people_capped: bool = False
    deliveries_capped: bool = False
    deliveries_scanned: int = 0
    # Records moved to quarantine, by kind (store-wide: shown to viewers of every tenant only, as a
    # record that cannot be read cannot be told apart by tenant). None: not shown.
    quarantined: dict[str, int] | None = None

    @property
    def quarantined_total(self) -> int:
        return sum((self.quarantined or {}).values())

    @property
    def reachable(self) -> int:
        return sum(t.reachable for t in self.tenants)

    @property
    def unreachable_count(self) -> int:
        return sum(sum(t.unreachable.values()) for t in self.tenants)

    @property
    def delivered(self) -> int:
        return sum(h.delivered for h in self.hours)

    @property
    def running(self) -> int:
        return sum(1 for b in self.broadcasts if b["running"])

    @property
    def failed(self) -> int:
        return sum(h.failed for h in self.hours)


async def people(store: Store, tenant_id: str | None) -> tuple[list[Person], bool]:
    """Every person with a Teams-side reference (grouped from the reference pages), and whether the
    scan stopped at the cap."""
    grouped: dict[PersonKey, list[Reference]] = defaultdict(list)
    token: str | None = None
    scanned = 0
    capped = False
    while True:
        page = await store.references.page(tenant_id=tenant_id, status=None, surface=None, limit=PAGE, token=token)
        for ref in page.items:
            if ref.surface in PERSON_SURFACES:
                grouped[PersonKey(ref.tenant_id, ref.user_key)].append(ref)
        scanned += len(page.items)
        token = page.next_token
        if not token:
            break
        if scanned >= MAX_REFERENCES:
            capped = True
            break
    return [Person(key, refs) for key, refs in grouped.items()], capped


def person_status(person: Person) -> str:
    """``active`` when a message can be sent now, else why not (opted out first: it is their choice)."""
    if person.opted_out:
        return "optedOut"
    return str(person.reachability())


def unreachable_row(person: Person, status: str) -> UnreachablePerson:
    shown = person.display
    return UnreachablePerson(
        tenant_id=shown.tenant_id,
        name=shown.name,
        upn=shown.upn,
        email=shown.email,
        aad_object_id=shown.aad_object_id,
        status=status,
        last_seen=max(r.last_seen for r in person.references),
        last_error=next((r.last_error for r in person.references if r.last_error), None),
    )


async def unreachable_people(
    store: Store, tenant_id: str | None, statuses: set[str] | None = None
) -> tuple[list[UnreachablePerson], bool]:
    rows: list[UnreachablePerson] = []
    everyone, capped = await people(store, tenant_id)
    for person in everyone:
        status = person_status(person)
        if status != ReferenceStatus.ACTIVE and (statuses is None or status in statuses):
            rows.append(unreachable_row(person, status))
    rows.sort(key=lambda r: (r.status, r.tenant_id, r.label.lower()))
    return rows, capped


def hour_buckets(at: float, hours: int) -> list[HourBucket]:
    current = int(at // HOUR) * HOUR
    return [HourBucket(start=current - HOUR * (hours - 1 - i)) for i in range(hours)]


async def collect(
    store: Store,
    broadcasts: BroadcastService,
    *,
    tenant_id: str | None,
    hours: int = 24,
    unreachable_limit: int = 20,
    at: float | None = None,
) -> Overview:
    """Everything on the overview page, for one tenant or (tenant_id None) all of them."""
    at = at or now()
    overview = Overview(generated_at=at, hours=hour_buckets(at, hours))

    tenants: dict[str, TenantRow] = {}
    unreachable: list[UnreachablePerson] = []
    everyone, overview.people_capped = await people(store, tenant_id)
    for person in everyone:
        row = tenants.setdefault(person.key.tenant_id, TenantRow(person.key.tenant_id))
        status = person_status(person)
        if status == ReferenceStatus.ACTIVE:
            row.reachable += 1
        else:
            row.unreachable[status] += 1
            unreachable.append(unreachable_row(person, status))
    overview.tenants = sorted(tenants.values(), key=lambda t: (-t.total, t.tenant_id))
    unreachable.sort(key=lambda r: -r.last_seen)
    overview.unreachable = unreachable[:unreachable_limit]

    await _deliveries(store, overview, tenant_id, at)
    overview.broadcasts = await recent_broadcasts(store, broadcasts, tenant_id)
    if tenant_id is None:
        overview.quarantined = await store.quarantine.counts()
    return overview


async def _deliveries(store: Store, overview: Overview, tenant_id: str | None, at: float) -> None:
    first = overview.hours[0].start
    by_start = {b.start: b for b in overview.hours}
    reasons: Counter[str] = Counter()
    examples: dict[str, tuple[float, str]] = {}
    token: str | None = None
    while True:
        page = await store.outbox.page(limit=PAGE, token=token)
        for delivery in page.items:
            if (tenant_id and delivery.tenant_id != tenant_id) or delivery.kind in OPERATION_KINDS:
                continue  # a broadcast update or recall is not a message of its own
            finished = _finished_at(delivery)
            if finished is None or not first <= finished <= at:
                continue
            bucket = by_start.get(int(finished // HOUR) * HOUR)
            if bucket is None:
                continue
            if delivery.status == DeliveryStatus.DELIVERED:
                bucket.delivered += 1
            else:
                bucket.failed += 1
                code = str((delivery.error or {}).get("code") or "Unknown")
                reasons[code] += 1
                message = str((delivery.error or {}).get("message") or "")
                if code not in examples or finished > examples[code][0]:
                    examples[code] = (finished, message)
        overview.deliveries_scanned += len(page.items)
        token = page.next_token
        if not token:
            break
        if overview.deliveries_scanned >= MAX_DELIVERIES:
            overview.deliveries_capped = True
            break
    overview.failure_reasons = [FailureReason(code, count, examples[code][1]) for code, count in reasons.most_common()]


def _finished_at(delivery: Delivery) -> float | None:
    if delivery.status == DeliveryStatus.DELIVERED:
        return delivery.delivered_at or delivery.updated_at
    if delivery.status == DeliveryStatus.FAILED:
        return delivery.updated_at
    return None


async def recent_broadcasts(
    store: Store, service: BroadcastService, tenant_id: str | None, limit: int = RECENT_BROADCASTS
) -> list[dict[str, Any]]:
    """The latest broadcasts the viewer may see, running or finished, newest first, with their counts."""
    viewer = Caller(name="dashboard", tenant_id=tenant_id, scopes=frozenset({"admin"}))
    found = []
    for broadcast_id in await store.broadcasts.ids():  # broadcasts are few (the store keeps them a while)
        broadcast = await store.broadcasts.get(broadcast_id)
        if broadcast is not None and viewer.can_see(broadcast.tenant_id):
            found.append(broadcast)
    found.sort(key=lambda b: b.created_at, reverse=True)
    recent = []
    for broadcast in found[:limit]:
        try:
            report = await service.report(viewer, broadcast.id, failures_limit=1)
        except Rejected:  # finished and expired between the two reads
            continue
        recent.append(
            {
                "id": broadcast.id,
                "owner": broadcast.owner,
                "tenant_id": broadcast.tenant_id,
                "status": broadcast.status,
                "running": broadcast.status != "completed",
                "first_line": first_line(broadcast.content),
                "total": broadcast.total,
                "progress": report["progress"],
                "counts": report["counts"],
                "created_at": broadcast.created_at,
            }
        )
    return recent


def utc(timestamp: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime(fmt)
