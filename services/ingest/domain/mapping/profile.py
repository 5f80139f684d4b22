"""Profile fields as marketing platforms send them, made to fit the ``profile`` contract.

Platforms hold free text where the contract is strict: a company size "25-50", a country
"Germany". A lead is worth more than a perfect field, so values are coerced where the meaning
is clear (the lower bound of a size range, a two-letter country code upper-cased), kept in
``extra`` where it is not, and over-long text is cut to the contract's limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TEXT_LIMITS = {
    "first_name": 256,
    "last_name": 256,
    "company": 256,
    "job_title": 256,
    "industry": 256,
    "phone": 64,
}
_EXTRA_LIMIT = 256
_LEADING_NUMBER = re.compile(r"\s*(\d[\d,]*)")


def profile_from(values: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """The profile from ``values``, whose keys ``names`` maps to profile fields.

    What cannot be coerced is kept as text in ``extra`` (``company_size_text``,
    ``country_name``), so a person reading the lead still sees what the platform held.
    """
    profile: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for source_name, field in names.items():
        value = values.get(source_name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if field == "company_size":
            size = company_size(value)
            if size is not None:
                profile[field] = size
            else:
                extra["company_size_text"] = str(value).strip()[:_EXTRA_LIMIT]
        elif field == "country":
            code = str(value).strip()
            if len(code) == 2 and code.isascii() and code.isalpha():
                profile[field] = code.upper()
            else:
                extra["country_name"] = code[:_EXTRA_LIMIT]
        elif field in _TEXT_LIMITS:
            profile[field] = str(value).strip()[: _TEXT_LIMITS[field]]
    if extra:
        profile["extra"] = extra
    return profile


def company_size(value: Any) -> int | None:
    """Employees from ``250``, ``"250"``, ``"1,000+"`` or a range ``"25-50"`` (its lower bound)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value >= 0 else None
    match = _LEADING_NUMBER.match(str(value))
    return int(match.group(1).replace(",", "")) if match else None
