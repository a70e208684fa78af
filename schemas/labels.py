"""Ground truth written by ``radar simulate`` next to its events, read by ``radar evaluate``.

One JSON object per line, discriminated on ``kind``:

- ``world`` (first line): the seed, size and time span of the simulation;
- ``account``: one per account, with its profile and the trajectory the simulator gave it;
- ``churn``: the account left at a renewal (``at`` = the renewal it did not renew);
- ``expansion``: the account bought more (``at`` = when the expansion closed);
- ``champion_left``: a champion's departure (``at`` = the ``occurred_at`` of its ``role_change``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from schemas.events import Id


class _Label(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorldLabel(_Label):
    kind: Literal["world"]
    seed: int
    accounts: int
    days: int
    start: AwareDatetime
    end: AwareDatetime


class AccountLabel(_Label):
    kind: Literal["account"]
    account_id: Id
    name: str
    tier: Literal[1, 2, 3]
    sector: str
    arr: float
    trajectory: Literal["healthy", "churning", "expanding"]


class ChurnLabel(_Label):
    kind: Literal["churn"]
    account_id: Id
    at: AwareDatetime


class ExpansionLabel(_Label):
    kind: Literal["expansion"]
    account_id: Id
    at: AwareDatetime


class ChampionLeftLabel(_Label):
    kind: Literal["champion_left"]
    account_id: Id
    stakeholder_id: Id
    at: AwareDatetime


Label = Annotated[
    WorldLabel | AccountLabel | ChurnLabel | ExpansionLabel | ChampionLeftLabel,
    Field(discriminator="kind"),
]
LABEL: TypeAdapter[Label] = TypeAdapter(Label)

