"""The building blocks every worksheet section uses: the strict model configuration and bounded number types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from routecalc.limits import MAX_NUMBER

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0, le=MAX_NUMBER)]
Positive = Annotated[float, Field(gt=0.0, le=MAX_NUMBER)]
Count = Annotated[int, Field(gt=0, le=int(MAX_NUMBER))]  # tokens, requests per minute, ...


STRICT = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)  # no unknown keys, no coercion

SCHEMA_VERSION = 1
DAYS_PER_MONTH = 365 / 12  # 30.4167: requests_per_day x this = requests per month
Z95 = 1.6448536269514722  # standard normal quantile at 0.95: sigma = ln(p95/p50) / Z95
MAX_SPREAD = 1000  # largest p95/p50 of a band (sigma 4.2): beyond it a typo is likelier than a distribution
MAX_CHAIN = 8  # longest chain a policy may have (a fallback loop is a known production failure)
DEFAULT_STATUS_CODES = (429, 500, 502, 503, 504)


class _Strict(BaseModel):
    model_config = STRICT
