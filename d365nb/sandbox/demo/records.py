"""Deterministic demo records in storage form (see `schema/model.py`), made in memory.

Everything comes from one `random.Random(seed)` and a fixed `now`, so the same seed and `now`
give the same ids and values. Times are spread backwards from `now` (leads over the past year),
so the relative query functions (`LastXDays`, `ThisMonth`) find rows whenever the demo is made.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..schema.model import Table
from ..store import sequential_guid
from . import vocabulary as words

Row = dict[str, Any]
CALLER_ID = "f7c1c1d4-9d1e-4f7a-8a51-3b0d365a0001"
COUNTS = {
    "account": 220,
    "contact": 600,
    "lead": 1200,
    "task": 1300,
    "opportunity": 300,
    "email": 250,
}


STAMP = "%Y-%m-%dT%H:%M:%SZ"  # storage form of a datetime
# Demo ids count back from this moment by each record's age (see `_sequential_ids`).
_ID_ANCHOR_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP)


def _ascii(text: str) -> str:
    """`Zoë O'Neil` -> `zoeoneil`: e-mail and domain friendly."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum() or ch == ".")


class DemoBuilder:
    """Builds all demo rows; `build()` returns {logical name: rows} in insertion order."""

    def __init__(self, schema: Mapping[str, Table], seed: int, now: datetime) -> None:
        self.schema = schema
        self.rng = random.Random(seed)
        self.now = now.astimezone(UTC).replace(microsecond=0)
        self.users: list[Row] = []
        self.teams: list[Row] = []
        self.accounts: list[Row] = []
        self.contacts: list[Row] = []
        self.leads: list[Row] = []
        self.tasks: list[Row] = []
        self.opportunities: list[Row] = []
        self.emails: list[Row] = []
        self.parties: list[Row] = []
        self.domains: dict[str, str] = {}  # account id -> e-mail domain

    # -- helpers ------------------------------------------------------------------------------

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _ago(self, max_days: float, min_days: float = 0.0) -> datetime:
        return self.now - timedelta(seconds=int(self.rng.uniform(min_days, max_days) * 86400))

    def _phone(self) -> str:
        return f"+1-{self.rng.randint(200, 989)}-555-{self.rng.randint(100, 199):04d}"

    def _owner(self) -> tuple[str, str]:
        """Most records belong to a user; one in eight to a team."""
        if self.rng.random() < 0.125:
            return self.rng.choice(self.teams)["teamid"], "team"
        return self.rng.choice(self.users[:9])["systemuserid"], "systemuser"

    def _audit(self, row: Row, created: datetime, owned: bool = True) -> Row:
        """createdon/modifiedon and createdby/modifiedby (+ ownerid), consistently."""
        modified = created + (self.now - created) * self.rng.random() ** 3
        author = self.rng.choice(self.users)["systemuserid"]
        row.update(
            createdon=_stamp(created),
            modifiedon=_stamp(modified),
            createdby=author,
            createdby__type="systemuser",
            modifiedby=author,
            modifiedby__type="systemuser",
        )
        if owned:
            row["ownerid"], row["ownerid__type"] = self._owner()
        return row

    def _status(self, table: str, weights: Mapping[int, float]) -> tuple[int, int]:
        """A (statecode, statuscode) pair drawn by status weight; state from the option set."""
        status_col = self.schema[table].columns["statuscode"]
        state_of = {o.value: o.state for o in status_col.options}
        values = list(weights)
        status = self.rng.choices(values, [weights[v] for v in values])[0]
        return state_of[status], status

    def _unless(self, chance_missing: float, value: Any) -> Any:
        """`value`, or None (a column left empty) with probability `chance_missing`."""
        return None if self.rng.random() < chance_missing else value

    @staticmethod
    def _link(row: Row, column: str, target: Row, table: str, primary_id: str) -> None:
        """Set lookup `column` of `row` to `target` (storage form: id + `<column>__type`)."""
        row[column], row[f"{column}__type"] = target[primary_id], table

    def _person(self) -> tuple[str, str]:
        return self.rng.choice(words.FIRST_NAMES), self.rng.choice(words.LAST_NAMES)

    # -- tables -------------------------------------------------------------------------------

    def build(self) -> dict[str, list[Row]]:
        self._build_users()
        self._build_teams()
        self._build_accounts()
        self._build_contacts()
        self._link_primary_contacts()
        self._build_leads()
        self._build_tasks()
        self._build_opportunities()
        self._build_emails()
        tables = {
            "systemuser": self.users,
            "team": self.teams,
            "account": self.accounts,
            "contact": self.contacts,
            "lead": self.leads,
            "task": self.tasks,
            "opportunity": self.opportunities,
            "email": self.emails,
            "activityparty": self.parties,
        }
        self._sequential_ids(tables)
        return tables

    def _sequential_ids(self, tables: dict[str, list[Row]]) -> None:
        """Give every record (but the fixed caller) a sequential id stamped with its `createdon`,
        as Dataverse assigns them, so reading without `$orderby` (primary-key order) returns
        records in creation order; then repoint every lookup at the new ids."""
        mapping: dict[str, str] = {}
        fallback = _stamp(self.now)
        now_ms = int(self.now.timestamp() * 1000)
        for name, batch in tables.items():
            pk = self.schema[name].primary_id
            last = 0
            for row in sorted(batch, key=lambda r: r.get("createdon") or fallback):
                if row[pk] == CALLER_ID:
                    continue
                moment = datetime.fromisoformat(row.get("createdon") or fallback)
                # Counted back from a fixed moment, not from `now`: the same seed gives the same
                # ids whenever the demo is made, and they sort before ids assigned at run time.
                millis = _ID_ANCHOR_MS - (now_ms - int(moment.timestamp() * 1000))
                last = max(millis << 12, last + 1)
                mapping[row[pk]] = sequential_guid(last, self.rng)
        for batch in tables.values():
            for row in batch:
                for key, value in row.items():
                    if isinstance(value, str) and value in mapping:
                        row[key] = mapping[value]

    def _build_users(self) -> None:
        for n, (first, last, title) in enumerate(words.USERS):
            uid = CALLER_ID if n == 0 else self._id()
            login = f"{_ascii(first)}.{_ascii(last)}@contoso.onmicrosoft.com"
            self.users.append(
                {
                    "systemuserid": uid,
                    "firstname": first,
                    "lastname": last,
                    "domainname": login,
                    "internalemailaddress": login,
                    "title": title,
                    "jobtitle": title,
                    "mobilephone": self._phone(),
                    "isdisabled": 1 if n == len(words.USERS) - 1 else 0,  # one left the company
                    "parentsystemuserid": None if n == 0 else CALLER_ID,
                    "parentsystemuserid__type": None if n == 0 else "systemuser",
                }
            )
        for user in self.users:
            # Users exist before anyone creates records: created up to three years ago.
            self._audit(user, self._ago(3 * 365, 400), owned=False)
            user["createdby"] = user["modifiedby"] = CALLER_ID

    def _build_teams(self) -> None:
        for name, email, description in words.TEAMS:
            team = {
                "teamid": self._id(),
                "name": name,
                "teamtype": 0,
                "emailaddress": email,
                "description": description,
                "administratorid": CALLER_ID,
                "administratorid__type": "systemuser",
            }
            self.teams.append(self._audit(team, self._ago(2 * 365, 400), owned=False))

    def _company_names(self, count: int) -> list[str]:
        combos = [
            f"{stem} {suffix}".strip()
            for stem in words.COMPANY_STEMS
            for suffix in words.COMPANY_SUFFIXES
        ]
        picked = self.rng.sample(combos, count)
        # Keep the awkward ones in every demo, whatever the seed picks.
        for i, tricky in enumerate(("O'Neil Logistics", "Café Olé", "Müller & Søn GmbH")):
            if tricky not in picked:
                picked[i * 7] = tricky
        return picked

    def _build_accounts(self) -> None:
        categories = self.schema["account"].columns["industrycode"].options
        for n, name in enumerate(self._company_names(COUNTS["account"])):
            city, country = self.rng.choice(words.CITIES)
            # `_ascii` keeps dots (for `first.last` logins); a domain label must not, or
            # "Adventure Inc." becomes `adventureinc..example.com`.
            label = _ascii(name.split(" ")[0] + name.split(" ")[-1]).replace(".", "")
            domain = label + ".example.com"
            employees = int(self.rng.lognormvariate(5, 1.6)) + 1
            state, status = (1, 2) if self.rng.random() < 0.08 else (0, 1)
            account = {
                "accountid": self._id(),
                "name": name,
                "accountnumber": f"AC-{10001 + n}",
                "revenue": round(employees * self.rng.uniform(60_000, 240_000), -3),
                "numberofemployees": employees,
                "accountcategorycode": self.rng.choice((1, 2, 2, None)),
                "industrycode": self.rng.choice(categories).value,
                "creditonhold": int(self.rng.random() < 0.1),
                "creditlimit": self.rng.choice((None, 10_000.0, 50_000.0, 250_000.0)),
                "donotpostalmail": int(self.rng.random() < 0.05),
                "address1_line1": f"{self.rng.randint(1, 999)} {self.rng.choice(words.STREETS)}",
                "address1_city": city,
                "address1_country": country,
                "telephone1": self._phone(),
                "emailaddress1": self._unless(0.1, f"info@{domain}"),
                "websiteurl": f"https://www.{domain}",
                "description": self._unless(0.6, f"{name} buys {self.rng.choice(words.PRODUCTS)}."),
                "statecode": state,
                "statuscode": status,
            }
            if self.accounts and self.rng.random() < 0.1:
                parent = self.rng.choice(self.accounts)
                self._link(account, "parentaccountid", parent, "account", "accountid")
            self.domains[account["accountid"]] = domain
            self.accounts.append(self._audit(account, self._ago(730, 30)))

    def _build_contacts(self) -> None:
        for _ in range(COUNTS["contact"]):
            first, last = self._person()
            account = self.rng.choice(self.accounts) if self.rng.random() < 0.92 else None
            city, country = (
                (account["address1_city"], account["address1_country"])
                if account and self.rng.random() < 0.8
                else self.rng.choice(words.CITIES)
            )
            domain = self.domains[account["accountid"]] if account else "mail.example.net"
            birth = self.now.date() - timedelta(days=self.rng.randint(22 * 365, 66 * 365))
            email = f"{_ascii(first)}.{_ascii(last)}@{domain}"
            contact = {
                "contactid": self._id(),
                "firstname": first,
                "lastname": last,
                "jobtitle": self.rng.choice(words.JOB_TITLES),
                "emailaddress1": self._unless(0.08, email),
                "telephone1": self._phone(),
                "mobilephone": self._unless(0.4, self._phone()),
                "address1_city": city,
                "address1_country": country,
                "annualincome": round(self.rng.uniform(35_000, 240_000), -2),
                "birthdate": self._unless(0.3, birth.isoformat()),
                "gendercode": self.rng.choice((1, 2, None)),
                "donotemail": int(self.rng.random() < 0.07),
                "creditonhold": int(self.rng.random() < 0.03),
                "statecode": 0,
                "statuscode": 1,
            }
            if self.rng.random() < 0.05:
                contact["statecode"], contact["statuscode"] = 1, 2
            if account:
                self._link(contact, "parentcustomerid", account, "account", "accountid")
            self.contacts.append(self._audit(contact, self._ago(700, 1)))

    def _link_primary_contacts(self) -> None:
        by_account: dict[str, list[Row]] = {}
        for contact in self.contacts:
            if contact.get("parentcustomerid__type") == "account":
                by_account.setdefault(contact["parentcustomerid"], []).append(contact)
        for account in self.accounts:
            people = by_account.get(account["accountid"])
            if people and self.rng.random() < 0.7:
                person = self.rng.choice(people)
                self._link(account, "primarycontactid", person, "contact", "contactid")

    def _build_leads(self) -> None:
        # Status weights: most leads are open; every status reason occurs.
        weights = {1: 30, 2: 20, 3: 18, 4: 12, 5: 7, 6: 8, 7: 5}
        sources = [o.value for o in self.schema["lead"].columns["leadsourcecode"].options]
        for _ in range(COUNTS["lead"]):
            first, last = self._person()
            created = self._ago(365)
            state, status = self._status("lead", weights)
            account = self.rng.choice(self.accounts) if self.rng.random() < 0.35 else None
            stem, suffix = (
                self.rng.choice(words.COMPANY_STEMS),
                self.rng.choice(words.COMPANY_SUFFIXES),
            )
            company = account["name"] if account else f"{stem} {suffix}".strip()
            domain = _ascii(company.split(" ")[0]).replace(".", "") + ".example.org"
            product = self.rng.choice(words.PRODUCTS)
            subject = self.rng.choice(words.LEAD_SUBJECTS).format(product=product, company=company)
            employees = int(self.rng.lognormvariate(4, 1.5)) + 1
            lead = {
                "leadid": self._id(),
                "subject": subject[:1].upper() + subject[1:],
                "firstname": first,
                "lastname": last,
                "companyname": company,
                "jobtitle": self.rng.choice(words.JOB_TITLES),
                "emailaddress1": self._unless(0.1, f"{_ascii(first)}.{_ascii(last)}@{domain}"),
                "telephone1": self._phone(),
                "mobilephone": self._unless(0.5, self._phone()),
                "websiteurl": self._unless(0.5, f"https://{domain}"),
                "address1_city": self.rng.choice(words.CITIES)[0],
                "address1_country": None,
                "description": self._unless(
                    0.7, f"Met at a {self.rng.choice(words.EVENTS)}; wants {product}."
                ),
                "estimatedclosedate": (created + timedelta(days=self.rng.randint(14, 150)))
                .date()
                .isoformat(),
                "estimatedvalue": round(self.rng.lognormvariate(9.5, 1.0), -2),
                "revenue": round(employees * self.rng.uniform(50_000, 200_000), -3),
                "numberofemployees": employees,
                "leadsourcecode": self.rng.choice(sources + [None]),
                "leadqualitycode": self.rng.choice((1, 2, 2, 3)),
                "donotemail": int(self.rng.random() < 0.05),
                "statecode": state,
                "statuscode": status,
            }
            city = lead["address1_city"]
            lead["address1_country"] = next(c for n, c in words.CITIES if n == city)
            if account:
                self._link(lead, "parentaccountid", account, "account", "accountid")
            if status == 3 or (account and self.rng.random() < 0.5):
                # Qualified leads always have a customer: an account, or a contact.
                if account and self.rng.random() < 0.7:
                    self._link(lead, "customerid", account, "account", "accountid")
                else:
                    person = self.rng.choice(self.contacts)
                    self._link(lead, "customerid", person, "contact", "contactid")
                    self._link(lead, "parentcontactid", person, "contact", "contactid")
            self.leads.append(self._audit(lead, created))

    def _build_tasks(self) -> None:
        weights = {2: 25, 3: 15, 4: 8, 7: 4, 5: 35, 6: 13}
        pools = (("account", self.accounts), ("contact", self.contacts), ("lead", self.leads))
        for _ in range(self.rng.randint(COUNTS["task"], COUNTS["task"] + 50)):
            kind, pool = self.rng.choices(pools, (40, 30, 30))[0]
            target = self.rng.choice(pool)
            state, status = self._status("task", weights)
            # A follow-up is made after its record, within the last 200 days.
            since = self.now - datetime.strptime(target["createdon"], STAMP).replace(tzinfo=UTC)
            created = self._ago(min(max(since.total_seconds() / 86400, 0.01), 200))
            due = created + timedelta(days=self.rng.uniform(1, 45))
            task = {
                "activityid": self._id(),
                "subject": self._task_subject(kind, target),
                "description": self._unless(0.6, "Notes: " + self.rng.choice(words.TASK_NOTES)),
                "scheduledstart": _stamp(due - timedelta(hours=self.rng.choice((1, 2, 4, 24)))),
                "scheduledend": _stamp(due),
                "percentcomplete": self._progress(status),
                "prioritycode": self.rng.choices((0, 1, 2), (20, 60, 20))[0],
                "category": self.rng.choice(words.TASK_CATEGORIES + (None,)),
                "regardingobjectid": target[self.schema[kind].primary_id],
                "regardingobjectid__type": kind,
                "statecode": state,
                "statuscode": status,
            }
            if status == 5:  # Completed: when, and how long it took
                finished = min(
                    max(due + timedelta(days=self.rng.uniform(-5, 5)), created), self.now
                )
                minutes = self.rng.choice((15, 30, 45, 60, 90, 120))
                task["actualstart"] = _stamp(finished - timedelta(minutes=minutes))
                task["actualend"] = _stamp(finished)
                task["actualdurationminutes"] = minutes
            self.tasks.append(self._audit(task, created))
            if target.get("ownerid") and self.rng.random() < 0.8:
                # Whoever owns the record usually owns its follow-ups.
                task["ownerid"], task["ownerid__type"] = target["ownerid"], target["ownerid__type"]

    def _build_opportunities(self) -> None:
        """Deals with accounts (a contact as the customer now and then), across every status."""
        weights = {1: 45, 2: 8, 3: 25, 4: 10, 5: 12}
        for _ in range(COUNTS["opportunity"]):
            account = self.rng.choice(self.accounts)
            state, status = self._status("opportunity", weights)
            created = self._ago(360)
            value = float(self.rng.randrange(5, 500) * 1000)
            row = {
                "opportunityid": self._id(),
                "name": f"{self.rng.randint(5, 500)} licences for {account['name']}"[:300],
                "estimatedvalue": value,
                "estimatedclosedate": (created + timedelta(days=self.rng.randint(20, 180)))
                .date()
                .isoformat(),
                "closeprobability": self.rng.choice((10, 25, 50, 75, 90)),
                "opportunityratingcode": self.rng.choice((1, 2, 3)),
                "salesstage": self.rng.choice((0, 1, 2, 3)),
                "budgetamount": self._unless(0.5, value * self.rng.choice((0.8, 1.0, 1.5))),
                "statecode": state,
                "statuscode": status,
            }
            contact = account.get("primarycontactid")
            if contact and self.rng.random() < 0.15:
                row["customerid"], row["customerid__type"] = contact, "contact"
            else:
                self._link(row, "customerid", account, "account", "accountid")
            self._link(row, "parentaccountid", account, "account", "accountid")
            if contact:
                row["parentcontactid"], row["parentcontactid__type"] = contact, "contact"
            if state == 1:
                row["actualvalue"] = value
                row["actualclosedate"] = (created + timedelta(days=30)).date().isoformat()
            self.opportunities.append(self._audit(row, created))

    def _build_emails(self) -> None:
        """E-mails from a user to a contact, regarding the contact or one of its deals; each has
        its sender and recipient as activity parties (`email_activity_parties`)."""
        deals: dict[str, list[Row]] = {}
        for deal in self.opportunities:
            if deal.get("parentcontactid"):
                deals.setdefault(deal["parentcontactid"], []).append(deal)
        for _ in range(COUNTS["email"]):
            contact = self.rng.choice(self.contacts)
            sender = self.rng.choice(self.users[:9])
            created = self._ago(200)
            sent = self.rng.random() < 0.7
            row = {
                "activityid": self._id(),
                "subject": f"Following up, {contact['firstname']}"[:800],
                "description": self.rng.choice(words.TASK_NOTES),
                "directioncode": 1,
                "prioritycode": self.rng.choices((0, 1, 2), (15, 70, 15))[0],
                "statecode": 1 if sent else 0,
                "statuscode": 3 if sent else 1,
            }
            related = deals.get(contact["contactid"])
            if related and self.rng.random() < 0.5:
                deal = self.rng.choice(related)
                self._link(row, "regardingobjectid", deal, "opportunity", "opportunityid")
            else:
                self._link(row, "regardingobjectid", contact, "contact", "contactid")
            self._audit(row, created)
            row["ownerid"], row["ownerid__type"] = sender["systemuserid"], "systemuser"
            self.emails.append(row)
            for mask, party, kind, key in (
                (1, sender, "systemuser", "systemuserid"),
                (2, contact, "contact", "contactid"),
            ):
                self.parties.append(
                    {
                        "activitypartyid": self._id(),
                        "activityid": row["activityid"],
                        "activityid__type": "email",
                        "partyid": party[key],
                        "partyid__type": kind,
                        "participationtypemask": mask,
                        "partyidname": f"{party['firstname']} {party['lastname']}".strip(),
                        "addressused": party.get("emailaddress1")
                        or party.get("internalemailaddress"),
                    }
                )

    def _task_subject(self, kind: str, target: Row) -> str:
        if kind == "contact":
            name = f"{target['firstname']} {target['lastname']}"
        else:
            name = target["name" if kind == "account" else "subject"]
        return self.rng.choice(words.TASK_SUBJECTS[kind]).format(name=name)[:200]

    def _progress(self, status: int) -> int:
        """percentcomplete that fits the status reason."""
        if status in (2, 7):  # Not Started, Deferred
            return 0
        if status == 3:  # In Progress
            return self.rng.randrange(10, 100, 10)
        if status == 4:  # Waiting on someone else
            return self.rng.choice((25, 50))
        if status == 5:  # Completed
            return 100
        return self.rng.randrange(0, 60, 10)  # Canceled part-way
