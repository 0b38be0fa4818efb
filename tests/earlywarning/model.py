"""A reference model of the warning lifecycle (docs/warnings.md), written apart from `earlywarning.states`.

It knows only states, levels and publications: which step is allowed where, what it does to the
level, and whether it publishes. The property test drives it and the real desk with the same
random actions and checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RANK = {"I": 4, "II": 3, "III": 2, "IV": 1}

ALLOWED = {
    "verify": {"proposed"},
    "reject": {"proposed", "verified"},
    "issue": {"verified"},
    "adjust": {"issued", "adjusted"},
    "lift": {"issued", "adjusted"},
}
AFTER = {"verify": "verified", "reject": "rejected", "issue": "issued", "adjust": "adjusted", "lift": "lifted"}
NEEDS_REASON = {"verify", "reject", "adjust", "lift"}
OPEN = {"proposed", "verified", "issued", "adjusted"}
PUBLISHING = {"issue", "adjust", "lift"}


@dataclass
class ModelWarning:
    key: tuple[str, str]
    state: str
    level: str
    published: int = 0
    verified: bool = False
    rejected_at: float | None = None


@dataclass
class Model:
    hold_s: float = 7200.0  # warnings.yaml verification.rejection_hold_s
    warnings: list[ModelWarning] = field(default_factory=list)
    held: int = 0

    def open_for(self, key: tuple[str, str]) -> ModelWarning | None:
        return next((w for w in self.warnings if w.key == key and w.state in OPEN), None)

    def propose(self, key: tuple[str, str], level: str, now: float) -> tuple[str, ModelWarning]:
        """``created`` with the new warning, ``merged`` into the open one, or ``held``: a rule's proposal within
        the hold after a rejection of the same key, at no higher a level than the rejected one."""
        current = self.open_for(key)
        rejected = [w for w in self.warnings if w.key == key and w.rejected_at is not None
                    and now - w.rejected_at < self.hold_s]
        if current is None and rejected:
            last = max(rejected, key=lambda w: w.rejected_at or 0.0)
            if RANK[level] <= RANK[last.level]:
                self.held += 1
                return "held", last
        if current is None:
            self.warnings.append(ModelWarning(key, "proposed", level))
            return "created", self.warnings[-1]
        if current.state in ("proposed", "verified") and RANK[level] > RANK[current.level]:
            current.level = level  # raised before publication; in force, a person adjusts
        return "merged", current

    def act(self, warning: ModelWarning, action: str, reason: bool, level: str | None = None,
            now: float = 0.0) -> str:
        """``ok``, ``not_allowed`` (409) or ``invalid`` (422)."""
        if warning.state not in ALLOWED[action]:
            return "not_allowed"
        if action in NEEDS_REASON and not reason:
            return "invalid"
        if action == "adjust":
            if level == warning.level:
                return "invalid"
            warning.level = level  # type: ignore[assignment]
        warning.state = AFTER[action]
        if action == "reject":
            warning.rejected_at = now
        warning.verified = warning.verified or action == "verify"
        warning.published += action in PUBLISHING
        return "ok"
