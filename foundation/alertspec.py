"""Alert handling configuration (``alerting.yaml``): latching, noise control, routing, receivers, escalation.

Validated at load like everything a user tunes. Defaults follow DOMAIN.md (ISA-18.2 practice):
orange and red latch; chattering is ≥ 3 activations in 60 s; a flood is > 10 new alerts in 10 min
per duty desk; an alert active for more than 24 h is stale. Acknowledgement deadlines per tier
(red 5 min, orange 10 min, yellow 30 min) escalate an unacknowledged alert's notification to the
next receiver of its route. This module imports only `foundation.domain`, `foundation.rulespec` and pydantic.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from foundation.domain import Family, Tier
from foundation.rulespec import TierName


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Chattering(_Strict):
    activations: int = Field(default=3, ge=2)
    window_s: float = Field(default=60.0, gt=0)


class Flood(_Strict):
    alerts: int = Field(default=10, ge=1, description="a flood is MORE than this many new alerts per desk in window_s")
    window_s: float = Field(default=600.0, gt=0)
    digest_every_s: float = Field(default=60.0, gt=0, description="during a flood, one grouped notification per site this often")


class LogChannel(_Strict):
    kind: Literal["log"]


class MqttChannel(_Strict):
    """Publishes the notification on ``liaowang/v1/notifications/{receiver}`` (QoS 1)."""

    kind: Literal["mqtt"]


class WebhookChannel(_Strict):
    """A generic JSON webhook: POST of the notification document."""

    kind: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(default=5.0, gt=0)
    headers: dict[str, str] = {}


class WeComChannel(_Strict):
    """WeCom (企业微信) group robot: markdown message to the robot's webhook URL (with its key)."""

    kind: Literal["wecom"]
    url: str = Field(pattern=r"^https?://", description="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…")
    mentioned_mobiles: list[str] = []
    timeout_s: float = Field(default=5.0, gt=0)


class DingTalkChannel(_Strict):
    """DingTalk (钉钉) group robot: markdown message; ``secret`` adds the signed timestamp."""

    kind: Literal["dingtalk"]
    url: str = Field(pattern=r"^https?://", description="https://oapi.dingtalk.com/robot/send?access_token=…")
    secret: SecretStr | None = None
    at_mobiles: list[str] = []
    timeout_s: float = Field(default=5.0, gt=0)


class EmailChannel(_Strict):
    kind: Literal["email"]
    host: str
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    to: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=10.0, gt=0)


Channel = Annotated[Union[LogChannel, MqttChannel, WebhookChannel, WeComChannel, DingTalkChannel, EmailChannel],
                    Field(discriminator="kind")]


class Shift(_Strict):
    """Who is on duty for a receiver, by local (CST) clock time; ``start`` after ``end`` wraps midnight."""

    person: str
    start: str = Field(default="00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="24:00", pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")
    days: list[Literal[1, 2, 3, 4, 5, 6, 7]] = Field(default=[1, 2, 3, 4, 5, 6, 7], description="ISO weekdays")


class Receiver(_Strict):
    """A duty role that receives notifications (plant operator on duty, safety officer, county or city desk)."""

    id: str = Field(pattern=r"^[a-z0-9_.-]{2,64}$")
    name: str
    level: Literal["plant_operator", "plant_safety_officer", "county_duty_desk", "city_duty_desk"]
    channels: list[Channel] = Field(min_length=1)
    roster: list[Shift] = []
    language: Literal["zh", "en"] = Field(default="zh", description=(
        "the language of its notifications: title and text from the alarm's texts (alerting/messages.py)"))


class RouteMatch(_Strict):
    tiers: list[TierName] = []
    families: list[Family] = []
    sites: list[str] = []
    counties: list[str] = []


class Route(_Strict):
    """A branch of the routing tree: alerts it matches go to ``receivers``, escalating along ``escalation``."""

    match: RouteMatch = RouteMatch()
    receivers: list[str] = Field(min_length=1, description="notified first")
    escalation: list[str] = Field(default=[], description="notified in turn while the alert stays unacknowledged")
    routes: list["Route"] = Field(default=[], description="more specific branches; the first that matches wins")
    continue_: bool = Field(default=False, alias="continue", description="also try the next sibling route")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MaintenanceWindow(_Strict):
    """Suppression by design: alerts of a site (or one sensor) in this window are recorded, shown as suppressed, not notified."""

    site_id: str | None = None
    sensor_id: str | None = None
    start: str
    end: str
    reason: str = Field(min_length=2)
    include_gas: bool = Field(default=False, description=(
        "a site-wide window covers the site's gas detectors too only when this says so (docs/alarms.md)"))

    @model_validator(mode="after")
    def _one_target(self) -> "MaintenanceWindow":
        if (self.site_id is None) == (self.sensor_id is None):
            raise ValueError("give site_id or sensor_id")
        return self


class Shelving(_Strict):
    """Limits on shelving (ISA-18.2: a shelf is temporary, with a reason, and not for the most urgent alarms)."""

    max_s: float = Field(default=8 * 3600.0, gt=0, description="longest shelf: one shift (8 h) by default")
    protected_tiers: list[TierName] = Field(default_factory=lambda: [Tier.RED], description=(
        "priorities only `protected_role` may shelve (default: urgent)"))
    protected_role: Literal["viewer", "operator", "duty_officer", "admin"] = "admin"


class AlertingSettings(_Strict):
    """Everything ``alerting.yaml`` holds."""

    latch_tiers: list[TierName] = Field(default_factory=lambda: [Tier.ORANGE, Tier.RED], description=(
        "an episode whose peak reached one of these priorities latches: it ends only after an acknowledgement "
        "and a return to normal"))
    latch_families: dict[str, list[TierName]] = Field(default_factory=lambda: {
        "gas": [Tier.BLUE, Tier.YELLOW, Tier.ORANGE, Tier.RED]}, description=(
        "family → priorities that latch in it besides latch_tiers (gas latches at every level, as gas controllers do)"))
    latch_exempt_kinds: list[str] = Field(default_factory=lambda: ["stale", "comm_loss", "not_reporting"], description=(
        "rule kinds latch_families does not apply to (faults that clear by themselves)"))
    ack_note_required: bool = Field(default=False, description="an acknowledgement must carry a note")
    close_cause_required: bool = Field(default=True, description=(
        "消警 must carry a cause category (误报/仪表故障/工艺波动/检修作业/真实险情, DOMAIN.md [S]); KPIs count by cause"))
    shelving: Shelving = Shelving()
    chattering: Chattering = Chattering()
    flood: Flood = Flood()
    stale_alert_s: float = Field(default=86_400.0, gt=0)
    ack_deadline_s: dict[str, float] = Field(default={"red": 300, "orange": 600, "yellow": 1800},
                                             description="tier → seconds before an unacknowledged alert escalates")
    repeat_s: dict[str, float] = Field(default={"red": 900, "orange": 1800, "yellow": 3600},
                                       description="tier → reminder interval while the alert stays active")
    retry_max_attempts: int = Field(default=5, ge=1, description="attempts on a channel before the fallback receiver")
    retry_initial_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    receivers: list[Receiver] = []
    fallback_receiver: str | None = None
    routes: list[Route] = []
    maintenance: list[MaintenanceWindow] = []
    out_of_service: list[str] = Field(default=[], description="sensor ids taken out of service: their alerts are not raised")

    @model_validator(mode="after")
    def _references(self) -> "AlertingSettings":
        ids = {r.id for r in self.receivers}
        if len(ids) != len(self.receivers):
            raise ValueError("receiver ids must be unique")
        if self.fallback_receiver is not None and self.fallback_receiver not in ids:
            raise ValueError(f"fallback_receiver {self.fallback_receiver!r} is not a receiver")

        def check(routes: list[Route]) -> None:
            for route in routes:
                for rid in route.receivers + route.escalation:
                    if rid not in ids:
                        raise ValueError(f"route names unknown receiver {rid!r}")
                check(route.routes)

        check(self.routes)
        for colour in list(self.ack_deadline_s) + list(self.repeat_s):
            if colour not in ("blue", "yellow", "orange", "red"):
                raise ValueError(f"unknown tier {colour!r} in ack_deadline_s/repeat_s")
        return self
