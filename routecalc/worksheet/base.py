"""The building blocks every worksheet section uses: the strict model configuration and bounded number types."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from routecalc.limits import MAX_NUMBER

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0, le=MAX_NUMBER)]
Positive = Annotated[float, Field(gt=0.0, le=MAX_NUMBER)]
Count = Annotated[int, Field(gt=0, le=int(MAX_NUMBER))]  # tokens, requests per minute, ...


STRICT = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)  # no unknown keys, no coercion
