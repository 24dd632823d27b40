"""Legato numbers: `config` is the scenario `config` block, validated by the same model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from legato.api.schemas.common import E164
from legato.core.config import NumberConfig


class NumberBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: E164 = Field(description="the Legato number, E.164")


class NumberCreate(NumberBase):
    config: NumberConfig | None = Field(
        default=None, description="the scenario `config` block (DESIGN section 6)"
    )


class NumberUpdate(BaseModel):
    """PUT replaces the whole configuration."""

    model_config = ConfigDict(extra="forbid")

    config: NumberConfig


class NumberPublic(BaseModel):
    id: str
    number: str
    config: dict[str, Any] = Field(description="the configuration as given (defaults omitted)")
    created_at: datetime
    updated_at: datetime


class NumberList(BaseModel):
    data: list[NumberPublic]


def stored_config(config: NumberConfig | None) -> dict[str, Any]:
    """The document kept in the store: what the user set, normalised, defaults left out."""
    if config is None:
        return {}
    return config.model_dump(mode="json", exclude_unset=True)
