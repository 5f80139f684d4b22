"""Lead-to-account matching as LeanData does it: domains, their country variants, company
names (normalised), fuzzy similarity above a threshold, free mail never by domain, and ties
not guessed."""

from __future__ import annotations

import pytest

from services.handoff.domain import Account, AccountMatching, RoutingState, decide, footprint
from services.handoff.domain.accounts import (
    AccountMatch,
    Ambiguous,
    domain_name,
    match_account,
    normalise_company,
)

from ..builders import NOW, make_facts, make_rep, make_routing

CUSTOMER = Account(
    id="acct-ec",
    name="Example Customer Ltd",
    domains=("example-customer.com",),
    owner_rep_id="ae-owner",
)
GLOBEX = Account(id="acct-gx", name="Globex Corporation", domains=("globex.io",))
ACCOUNTS = [CUSTOMER, GLOBEX]
CONFIG = AccountMatching()


def matched(domain: str | None, company: str | None = None) -> tuple[str, str, float] | None:
    found = match_account(ACCOUNTS, domain, company, CONFIG)
    assert not isinstance(found, Ambiguous)
    return None if found is None else (found.account.id, found.method, found.confidence)


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("example-customer.com", ("acct-ec", "domain", 1.0)),
        ("uk.example-customer.com", ("acct-ec", "domain", 1.0)),
        ("example-customer.co.uk", ("acct-ec", "domain_variant", 0.95)),
        ("example-customer.de", ("acct-ec", "domain_variant", 0.95)),
        ("examplecustomer.com", ("acct-ec", "domain_variant", 0.95)),
        ("example-customers.com", ("acct-ec", "fuzzy", 0.9677)),
        ("unrelated.example", None),
    ],
)
def test_domains_match_exactly_by_country_variant_or_fuzzily(
    domain: str, expected: tuple[str, str, float] | None
) -> None:
    assert matched(domain) == expected


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("ACME, Inc.", "acme"),
        ("Acme GmbH", "acme"),
        ("Société Générale S.A.", "societe generale"),
        ("Procter & Gamble Co", "procter and gamble"),
        ("Holding", "holding"),  # a name that is only a suffix stays a name
    ],
)
def test_company_names_normalise_case_punctuation_accents_and_legal_suffixes(
    name: str, normalised: str
) -> None:
    assert normalise_company(name) == normalised


def test_domain_names_drop_the_public_suffix_and_punctuation() -> None:
    assert [domain_name(d) for d in ("uk.example-customer.co.uk", "acme.com", "acme.com.au")] == [
        "examplecustomer",
        "acme",
        "acme",
    ]


def test_a_company_name_matches_whatever_the_domain() -> None:
    assert matched("gmail.com", "GLOBEX corp.") == ("acct-gx", "company_name", 0.9)
    assert matched(None, "Globex Corporation") == ("acct-gx", "company_name", 0.9)


def test_a_free_mail_domain_is_never_matched_by_domain() -> None:
    personal = Account(id="acct-g", name="Gmail Fans", domains=("gmail.com",))
    assert match_account([personal], "gmail.com", None, CONFIG) is None
    assert match_account([personal], "gmail.co.uk", None, CONFIG) is None


def test_a_fuzzy_match_below_the_threshold_is_no_match() -> None:
    strict = AccountMatching(fuzzy_threshold=99)
    assert match_account(ACCOUNTS, "example-customers.com", None, strict) is None
    found = match_account(ACCOUNTS, None, "Globx Corporation", CONFIG)  # a typo
    assert isinstance(found, AccountMatch)
    assert (found.account.id, found.method) == ("acct-gx", "fuzzy")


def test_two_accounts_matching_equally_well_are_ambiguous() -> None:
    twins = [CUSTOMER, Account(id="acct-ec2", name="Other", domains=("example-customer.fr",))]
    found = match_account(twins, "example-customer.de", None, CONFIG)
    assert isinstance(found, Ambiguous)
    assert [a.id for a in found.accounts] == ["acct-ec", "acct-ec2"]


@pytest.mark.parametrize(
    ("tie_break", "route"), [("fallback", "fallback"), ("rules", "round_robin")]
)
def test_an_ambiguous_match_goes_to_the_configured_tie_break(tie_break: str, route: str) -> None:
    twins = [CUSTOMER, Account(id="acct-ec2", name="Other", domains=("example-customer.fr",))]
    routing = make_routing(account_matching={"tie_break": tie_break})
    reps = [make_rep("sdr-1"), make_rep("ae-owner", role="ae")]
    facts = make_facts(email_domain="example-customer.de")

    decision = decide(routing, reps, twins, facts, RoutingState(), {}, NOW)

    assert decision.route == route
    assert decision.account_id is None
    account_step = decision.trace.steps[0]
    assert (account_step.outcome, account_step.method) == ("ambiguous", "domain_variant")


def test_the_trace_records_how_the_account_was_matched_and_how_sure() -> None:
    reps = [make_rep("sdr-1"), make_rep("ae-owner", role="ae")]
    facts = make_facts(email_domain="example-customer.co.uk")

    decision = decide(make_routing(), reps, ACCOUNTS, facts, RoutingState(), {}, NOW)

    assert (decision.route, decision.rep_id, decision.account_id) == (
        "account",
        "ae-owner",
        "acct-ec",
    )
    step = decision.trace.steps[0]
    assert (step.method, step.confidence) == ("domain_variant", 0.95)
    assert "domain_variant (0.95)" in step.detail


@pytest.mark.parametrize(
    "domain", ["example-customer.co.uk", "example-customer.de", "globex.io", "nowhere.example"]
)
def test_a_decision_given_the_leads_footprint_is_the_decision_that_matches_again(
    domain: str,
) -> None:
    twins = [*ACCOUNTS, Account(id="acct-ec2", name="Other", domains=("example-customer.fr",))]
    routing = make_routing()
    reps = [make_rep("sdr-1"), make_rep("ae-owner", role="ae")]
    facts = make_facts(email_domain=domain)
    known = footprint(routing, reps, twins, facts)

    again = decide(routing, reps, twins, facts, RoutingState(), {}, NOW)
    reused = decide(routing, reps, twins, facts, RoutingState(), {}, NOW, known=known)

    assert reused == again
