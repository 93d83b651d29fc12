"""The Salesforce side of the synthetic org: accounts, opportunities and contacts, deterministic like ``seed.py``.

The first accounts are ``seed.CUSTOMERS``, the names Jira issues carry in their Customer field, so the
"risk assessment" story (open Jira bugs of customers with opportunities closing this quarter) joins across apps.
Sizes make every listing page at the connector's batch size of 200 (accounts 2 pages, opportunities 5)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from sandbox.seed import CUSTOMERS

__all__ = ["SfAccount", "SfContact", "SfOpportunity", "SfSeed", "build_salesforce_seed"]

_PREFIXES = ("Blue", "Red", "North", "Bright", "Silver", "Quantum", "Iron", "Green", "Swift", "Polar", "Nova",
             "Summit", "Harbor", "Cedar", "Atlas")
_SUFFIXES = ("Systems", "Labs", "Group", "Holdings", "Analytics", "Logistics", "Foods", "Health", "Energy",
             "Robotics", "Media", "Partners", "Works", "Capital", "Retail")
INDUSTRIES = ("Technology", "Finance", "Healthcare", "Retail", "Manufacturing", "Energy", "Media")
ACCOUNT_TYPES = ("Customer", "Prospect", "Partner")
TIERS = ("Gold", "Silver", "Bronze")
COUNTRIES = ("US", "DE", "FR", "GB", "JP", "BR", "IN")
STAGES = (("Prospecting", 10, False, False), ("Qualification", 20, False, False),
          ("Needs Analysis", 40, False, False), ("Proposal/Price Quote", 60, False, False),
          ("Negotiation/Review", 80, False, False), ("Closed Won", 100, True, True),
          ("Closed Lost", 0, True, False))
OPP_TYPES = ("New Business", "Renewal", "Upsell")
LEAD_SOURCES = ("Web", "Partner", "Referral", "Trade Show", None)
TITLES = ("CTO", "VP Engineering", "Buyer", "CFO", "Head of IT", None)
EPOCH = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)


def sf_id(prefix: str, n: int) -> str:
    """An 18-character id with the object's key prefix (001 Account, 006 Opportunity, 003 Contact)."""
    return f"{prefix}RO{n:010d}AAA"


@dataclass(frozen=True)
class SfAccount:
    id: str
    name: str
    type: str
    industry: str
    annual_revenue: float | None
    employees: int | None
    country: str | None
    rating: str | None
    tier: str | None
    website: str | None
    created: datetime
    modified: datetime


@dataclass(frozen=True)
class SfOpportunity:
    id: str
    name: str
    account_id: str | None
    stage: str
    amount: float | None
    probability: float
    close_date: date
    is_closed: bool
    is_won: bool
    type: str | None
    lead_source: str | None
    created: datetime
    modified: datetime


@dataclass(frozen=True)
class SfContact:
    id: str
    account_id: str | None
    first_name: str | None
    last_name: str
    email: str | None
    title: str | None
    phone: str | None
    created: datetime
    modified: datetime


@dataclass(frozen=True)
class SfSeed:
    accounts: tuple[SfAccount, ...]
    opportunities: tuple[SfOpportunity, ...]
    contacts: tuple[SfContact, ...]


def _names(count: int) -> list[str]:
    generated = [f"{p} {s}" for s in _SUFFIXES for p in _PREFIXES]
    return (list(CUSTOMERS) + generated)[:count]


def _accounts(rng: random.Random, count: int) -> list[SfAccount]:
    out = []
    for n, name in enumerate(_names(count)):
        created = EPOCH + timedelta(hours=11 * n, minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
        slug = "".join(ch for ch in name.lower() if ch.isalnum())
        out.append(SfAccount(
            id=sf_id("001", n + 1), name=name, type=rng.choice(ACCOUNT_TYPES), industry=rng.choice(INDUSTRIES),
            annual_revenue=float(rng.randint(1, 5000) * 10_000) if rng.random() < 0.85 else None,
            employees=rng.randint(5, 50_000) if rng.random() < 0.9 else None,
            country=rng.choice(COUNTRIES) if rng.random() < 0.95 else None,
            rating=rng.choice(("Hot", "Warm", "Cold")) if rng.random() < 0.7 else None,
            tier=rng.choice(TIERS) if rng.random() < 0.8 else None,
            website=f"https://www.{slug}.example" if rng.random() < 0.9 else None,
            created=created, modified=created + timedelta(days=rng.randint(0, 300), seconds=rng.randint(0, 86399))))
    return out


def _opportunities(rng: random.Random, accounts: list[SfAccount], count: int) -> list[SfOpportunity]:
    out = []
    for n in range(count):
        account = accounts[(n * 7) % len(accounts)] if rng.random() < 0.97 else None
        stage, probability, closed, won = rng.choice(STAGES)
        close = date(2026, 1, 1) + timedelta(days=rng.randint(0, 545))  # 2026-01-01 .. 2027-06-30
        created = EPOCH + timedelta(hours=5 * n, minutes=rng.randint(0, 59))
        kind = rng.choice(OPP_TYPES) if rng.random() < 0.9 else None
        out.append(SfOpportunity(
            id=sf_id("006", n + 1), name=f"{account.name if account else 'Unassigned'} - {kind or 'Deal'} {n + 1}",
            account_id=account.id if account else None, stage=stage,
            amount=round(rng.randint(5, 2000) * 500.0, 2) if rng.random() < 0.9 else None,
            probability=float(probability), close_date=close, is_closed=closed, is_won=won, type=kind,
            lead_source=rng.choice(LEAD_SOURCES), created=created,
            modified=created + timedelta(hours=rng.randint(1, 2000))))
    return out


def _contacts(rng: random.Random, accounts: list[SfAccount], count: int) -> list[SfContact]:
    first = ("Ada", "Bo", "Cy", "Di", "Ed", "Flo", "Gil", "Hal", "Ivy", "Jo", "Kit", "Lou", None)
    last = ("Ngata", "Olsen", "Park", "Quint", "Reyes", "Stone", "Tran", "Voss", "Webb", "Young", "Zane", "O'Neil")
    out = []
    for n in range(count):
        account = accounts[(n * 3) % len(accounts)] if rng.random() < 0.95 else None
        given, family = rng.choice(first), rng.choice(last)
        created = EPOCH + timedelta(hours=9 * n, minutes=rng.randint(0, 59))
        email = f"{(given or 'x').lower()}.{family.lower().replace(chr(39), '')}{n}@customer.example"
        out.append(SfContact(
            id=sf_id("003", n + 1), account_id=account.id if account else None, first_name=given, last_name=family,
            email=email if rng.random() < 0.9 else None, title=rng.choice(TITLES),
            phone=f"+1 555 {n:04d}" if rng.random() < 0.7 else None, created=created,
            modified=created + timedelta(hours=rng.randint(1, 900))))
    return out


DEFAULT_ACCOUNTS = 240
DEFAULT_OPPORTUNITIES = 900
DEFAULT_CONTACTS = 520


@lru_cache(maxsize=2)
def build_salesforce_seed(seed: int = 20261123, accounts: int = DEFAULT_ACCOUNTS,
                          opportunities: int = DEFAULT_OPPORTUNITIES, contacts: int = DEFAULT_CONTACTS) -> SfSeed:
    rng = random.Random(seed)
    account_list = _accounts(rng, accounts)
    return SfSeed(accounts=tuple(account_list), opportunities=tuple(_opportunities(rng, account_list, opportunities)),
                  contacts=tuple(_contacts(rng, account_list, contacts)))
