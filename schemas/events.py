"""The five input event types of SPEC section 2, as one discriminated union on ``type``.

Models are strict: JSON types must match (``"1"`` is not an int), unknown fields are refused,
and ``occurred_at`` must carry a UTC offset. Decoding raw bytes, with the reason a message is
refused, lives in :mod:`schemas.decode`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
)
from pydantic_core import PydanticCustomError

Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(max_length=512)]

SCHEMA_VERSION = 1


def _json_int(value: object) -> object:
    """Literal ints compare by equality, so ``true`` and ``1.0`` would pass as ``1``: refuse them."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("literal_error", "Input should be an integer")
    return value


JsonInt = BeforeValidator(_json_int)
EVENT_TYPES: tuple[str, ...] = (
    "ad_impression",
    "outreach_reply",
    "content_interaction",
    "role_change",
    "account_profile",
)


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    event_id: Id
    schema_version: Annotated[Literal[1], JsonInt]
    occurred_at: AwareDatetime
    account_id: Id


class _StakeholderEvent(_Envelope):
    stakeholder_id: Id


class AdImpression(_StakeholderEvent):
    type: Literal["ad_impression"]
    campaign_id: Name
    creative_id: Name
    channel: Literal["linkedin", "meta", "google", "programmatic"]
    clicked: bool = False
    cost_micros: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None


class OutreachReply(_StakeholderEvent):
    type: Literal["outreach_reply"]
    sequence_id: Name
    channel: Literal["linkedin", "email"]
    reply_kind: Literal["reply", "positive_reply", "meeting_booked", "not_interested", "unsubscribe"]


class ContentInteraction(_StakeholderEvent):
    type: Literal["content_interaction"]
    content_id: Name
    action: Literal[
        "view", "like", "comment", "share", "save", "website_visit", "pricing_page_visit"
    ]
    topic: Text | None = None
    public: bool = False


class RoleChange(_StakeholderEvent):
    type: Literal["role_change"]
    change: Literal["joined", "left", "promoted", "role_changed"]
    title: Text
    function: Literal[
        "commercial", "financial", "technical", "operations", "procurement", "executive", "other"
    ]
    seniority: Literal["c_level", "vp", "director", "manager", "individual"]
    buying_role: Literal[
        "champion", "economic_buyer", "technical_evaluator", "end_user", "sceptic", "unknown"
    ] = "unknown"


class AccountProfile(_Envelope):
    type: Literal["account_profile"]
    name: Name
    sector: Name
    tier: Annotated[Literal[1, 2, 3], JsonInt]
    # the range of ClickHouse's Date: a date outside it could not be stored as sent
    renewal_date: Annotated[date, Field(ge=date(1970, 1, 1), le=date(2149, 6, 6))]
    arr: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    champion_ids: Annotated[list[Id], Field(max_length=1000)] = Field(default_factory=list)
    # the account's owner in the CRM (e.g. the CSM's e-mail): radar notify routes by it
    owner: Name | None = None


InputEvent = Annotated[
    AdImpression | OutreachReply | ContentInteraction | RoleChange | AccountProfile,
    Field(discriminator="type"),
]
INPUT_EVENT: TypeAdapter[InputEvent] = TypeAdapter(InputEvent)
