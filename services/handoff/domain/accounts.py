"""Lead-to-account matching as LeanData does it: by domain, by its country variants, by company
name, and fuzzily, with the method and the confidence of every match.

Methods, strongest first; the first that finds any account decides:

1. ``domain``: the lead's email domain or a parent of it is one of the account's domains
   (``uk.acme.com`` belongs to ``acme.com``). Confidence 1.
2. ``domain_variant``: the same name under another country or generic suffix, punctuation aside
   (``acme.co.uk``, ``acme.de`` and ``ac-me.com`` are variants of ``acme.com``). Confidence 0.95.
3. ``company_name``: the company the lead gave equals the account's name once both are
   normalised (case, punctuation, legal suffixes: ``ACME, Inc.`` is ``Acme GmbH``). Confidence 0.9.
4. ``fuzzy``: the best similarity (rapidfuzz ``token_sort_ratio``, 0-100) between the lead's
   normalised company name or domain name and an account's, at or above ``fuzzy_threshold``.
   Confidence ``score / 100``.

Matching runs for every lead, so the pure string normalisations are memoised.

Free-mail domains (``gmail.com``, and their variants such as ``gmail.co.uk``) are never
matched by domain, only by company name. When two accounts match equally well (within
``ambiguity_margin`` for fuzzy), the match is ambiguous and the configured ``tie_break``
decides; the matcher never guesses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from rapidfuzz import fuzz

from services.handoff.domain.config import Account, AccountMatching

MatchMethod = Literal["domain", "domain_variant", "company_name", "fuzzy"]

_CONFIDENCE: Final[dict[str, float]] = {
    "domain": 1.0,
    "domain_variant": 0.95,
    "company_name": 0.9,
}
_LEGAL_SUFFIXES: Final = frozenset(
    [
        "inc",
        "incorporated",
        "llc",
        "llp",
        "ltd",
        "limited",
        "corp",
        "corporation",
        "co",
        "company",
        "plc",
        "gmbh",
        "ag",
        "kg",
        "ohg",
        "ug",
        "se",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "oy",
        "ab",
        "as",
        "asa",
        "aps",
        "kk",
        "pty",
        "pte",
        "lp",
        "holding",
        "holdings",
        "group",
    ]
)
_SECOND_LEVEL: Final = frozenset(
    ["co", "com", "net", "org", "gov", "ac", "edu", "ltd", "plc", "ne", "or", "gv"]
)
"""Labels that, before a two-letter country code, are part of the suffix (``co.uk``)."""


@dataclass(frozen=True)
class AccountMatch:
    """The account a lead belongs to, how it was found and how sure the matcher is."""

    account: Account
    method: MatchMethod
    confidence: float


@dataclass(frozen=True)
class Ambiguous:
    """Two or more accounts matched equally well; ``tie_break`` in the config decides."""

    accounts: tuple[Account, ...]
    method: MatchMethod
    confidence: float


def match_account(
    accounts: Sequence[Account],
    domain: str | None,
    company: str | None,
    config: AccountMatching,
) -> AccountMatch | Ambiguous | None:
    """The lead's account by the strongest method that finds one; None if none does."""
    usable_domain = None if domain is None or _free_mail(domain, config) else domain
    exact: tuple[tuple[MatchMethod, list[Account]], ...] = (
        ("domain", _by_domain(accounts, usable_domain)),
        ("domain_variant", _by_variant(accounts, usable_domain)),
        ("company_name", _by_name(accounts, company)),
    )
    for method, found in exact:
        if found:
            return _verdict(found, method, _CONFIDENCE[method])
    return _by_similarity(accounts, usable_domain, company, config)


@lru_cache(maxsize=8192)
def normalise_company(name: str) -> str:
    """``"ACME, Inc."`` -> ``"acme"``: accents, case, punctuation and legal suffixes removed."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    joined = plain.replace(".", "").replace("&", " and ")  # "S.A." is "sa"
    words = re.sub(r"[^a-z0-9]+", " ", joined).split()
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


@lru_cache(maxsize=8192)
def domain_name(domain: str) -> str:
    """The name part of a domain without its public suffix or punctuation:
    ``"uk.example-customer.co.uk"`` -> ``"examplecustomer"``."""
    labels = domain.lower().strip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        labels = labels[:-2]
    elif len(labels) >= 2:
        labels = labels[:-1]
    return re.sub(r"[^a-z0-9]", "", labels[-1]) if labels else ""


def _free_mail(domain: str, config: AccountMatching) -> bool:
    """A listed free-mail domain or a country variant of one (``gmail.co.uk``)."""
    return domain in config.free_mail_domains or domain_name(domain) in _names(
        config.free_mail_domains
    )


@lru_cache(maxsize=16)
def _names(domains: frozenset[str]) -> frozenset[str]:
    """The domain names of ``domains`` (one set per configuration, not one per lead)."""
    return frozenset(domain_name(domain) for domain in domains)


def _by_domain(accounts: Sequence[Account], domain: str | None) -> list[Account]:
    if not domain:
        return []
    labels = domain.split(".")
    for start in range(len(labels) - 1):
        candidate = ".".join(labels[start:])
        found = [a for a in accounts if candidate in a.domains]
        if found:
            return found
    return []


def _by_variant(accounts: Sequence[Account], domain: str | None) -> list[Account]:
    name = domain_name(domain) if domain else ""
    if not name:
        return []
    return [a for a in accounts if any(domain_name(d) == name for d in a.domains)]


def _by_name(accounts: Sequence[Account], company: str | None) -> list[Account]:
    wanted = normalise_company(company) if company else ""
    if not wanted:
        return []
    return [a for a in accounts if normalise_company(a.name) == wanted]


def _by_similarity(
    accounts: Sequence[Account],
    domain: str | None,
    company: str | None,
    config: AccountMatching,
) -> AccountMatch | Ambiguous | None:
    probes = [p for p in (normalise_company(company or ""), domain_name(domain or "")) if p]
    if not probes:
        return None
    scored = sorted(
        ((max(_similarity(p, a) for p in probes), a) for a in accounts),
        key=lambda pair: (-pair[0], pair[1].id),
    )
    close = [a for score, a in scored if score >= config.fuzzy_threshold]
    if not close:
        return None
    best = scored[0][0]
    rivals = [a for score, a in scored if best - score <= config.ambiguity_margin]
    return _verdict([a for a in close if a in rivals], "fuzzy", round(best / 100, 4))


def _similarity(probe: str, account: Account) -> float:
    names = [normalise_company(account.name), *(domain_name(d) for d in account.domains)]
    return max((float(fuzz.token_sort_ratio(probe, name)) for name in names if name), default=0.0)


def _verdict(
    found: Iterable[Account], method: MatchMethod, confidence: float
) -> AccountMatch | Ambiguous:
    distinct = tuple(sorted({a.id: a for a in found}.values(), key=lambda a: a.id))
    if len(distinct) == 1:
        return AccountMatch(distinct[0], method, confidence)
    return Ambiguous(distinct, method, confidence)
