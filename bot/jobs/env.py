"""What every job gets: the services, the apps' senders, the nudge texts, the hooks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.core.context import Services
from bot.core.ports import Senders
from bot.jobs.outbox import OutboxSender
from bot.jobs.texts import NudgeTexts

Hook = Callable[[Services], Awaitable[int]]  # returns how many things it did


class Hooks:
    """Work later features attach to a job (`deadlines`: complaint deadlines, `flashsales`:
    sales starting and ending); the job runs whatever is attached, in order."""

    def __init__(self) -> None:
        self._by_job: defaultdict[str, list[Hook]] = defaultdict(list)

    def add(self, job: str, hook: Hook) -> None:
        self._by_job[job].append(hook)

    def of(self, job: str) -> tuple[Hook, ...]:
        return tuple(self._by_job.get(job, ()))


@dataclass
class JobEnv:
    services: Services
    senders: Senders
    texts: NudgeTexts
    hooks: Hooks = field(default_factory=Hooks)
    sender: OutboxSender = field(init=False)

    def __post_init__(self) -> None:
        self.sender = OutboxSender(self.services, self.senders)

    @property
    def channels(self) -> frozenset[str]:
        """The apps that can deliver a member's push from here."""
        return frozenset(self.senders.pushers)
