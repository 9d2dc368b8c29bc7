"""The query engine against a real (in-memory) store: filters, functions, order, select, count."""

from __future__ import annotations

import contextlib
import datetime as dt
import random

import pytest

from d365nb.sandbox import odata, schema
from d365nb.sandbox.store import Store

NOW = dt.datetime(2026, 3, 11, 15, 30, tzinfo=dt.UTC)  # a Wednesday
USER = "11111111-1111-1111-1111-111111111111"
OTHER_USER = "22222222-2222-2222-2222-222222222222"
CONTOSO = "aaaaaaaa-0000-0000-0000-000000000001"
FABRIKAM = "aaaaaaaa-0000-0000-0000-000000000002"
ADVENTURE = "aaaaaaaa-0000-0000-0000-000000000003"
ANN = "cccccccc-0000-0000-0000-000000000001"


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def db():
    tables = schema.load()
    store = Store(tables, None)
    store.insert_many(
        "systemuser",
        [
            {"systemuserid": USER, "firstname": "Cal", "lastname": "Ler", "domainname": "c@x"},
            {"systemuserid": OTHER_USER, "firstname": "Ot", "lastname": "Her", "domainname": "o@x"},
        ],
    )
    owner = {"ownerid": USER, "ownerid__type": "systemuser"}
    store.insert_many(
        "account",
        [
            {
                "accountid": CONTOSO,
                "name": "Contoso",
                "revenue": 100000.0,
                "numberofemployees": 50,
                "creditonhold": 1,
                "address1_city": "Redmond",
                **owner,
            },
            {
                "accountid": FABRIKAM,
                "name": "Fabrikam",
                "revenue": 5000.0,
                "numberofemployees": 2000,
                "creditonhold": 0,
                "parentaccountid": CONTOSO,
                "parentaccountid__type": "account",
                "ownerid": OTHER_USER,
                "ownerid__type": "systemuser",
            },
            {
                "accountid": ADVENTURE,
                "name": "Adventure Works",
                "numberofemployees": 5,
                "creditonhold": 0,
                **owner,
            },
            {"name": "100% Natural", "numberofemployees": 7, **owner},
            {"name": "A_B Corp", "numberofemployees": 9, **owner},
        ],
    )
    store.insert_many(
        "contact",
        [
            {
                "contactid": ANN,
                "firstname": "Ann",
                "lastname": "O'Bryan",
                "parentcustomerid": CONTOSO,
                "parentcustomerid__type": "account",
                "birthdate": "1990-03-11",
                **owner,
            },
            {"firstname": "Smith", "lastname": "smith", "birthdate": "1985-07-01", **owner},
        ],
    )
    store.update("account", CONTOSO, {"primarycontactid": ANN, "primarycontactid__type": "contact"})

    def task(subject, regarding, kind, state, **extra):
        return {
            "subject": subject,
            "regardingobjectid": regarding,
            "regardingobjectid__type": kind,
            "statecode": state,
            **owner,
            **extra,
        }

    store.insert_many(
        "task",
        [
            task("Call Contoso", CONTOSO, "account", 1, percentcomplete=100),
            task("Mail Contoso", CONTOSO, "account", 0, percentcomplete=10),
            task("Visit Fabrikam", FABRIKAM, "account", 1, percentcomplete=100),
            task("Regarding a contact", ANN, "contact", 0),
        ],
    )
    created = {
        "half hour ago": NOW - dt.timedelta(minutes=30),
        "three hours ago": NOW - dt.timedelta(hours=3),
        "yesterday": NOW - dt.timedelta(days=1),
        "last week": NOW - dt.timedelta(days=7),
        "last month": dt.datetime(2026, 2, 15, 9, tzinfo=dt.UTC),
        "last year": dt.datetime(2025, 6, 1, 9, tzinfo=dt.UTC),
        "tomorrow": NOW + dt.timedelta(days=1),
    }
    store.insert_many(
        "lead",
        [
            {
                "subject": name,
                "lastname": name.split()[0],
                "createdon": iso(moment),
                "estimatedclosedate": moment.date().isoformat(),
                "statuscode": 1 if i % 2 else 2,
                **owner,
            }
            for i, (name, moment) in enumerate(created.items())
        ],
    )
    yield store
    store.close()


def run(db, table, params, **kwargs):
    kwargs.setdefault("user_id", USER)
    kwargs.setdefault("page_size", 5000)
    kwargs.setdefault("now", NOW)
    return odata.execute(db.conn, db.schema, table, params, **kwargs)


def names(db, table, flt, **params):
    key = "subject" if table == "lead" else db.schema[table].primary_name
    result = run(db, table, {"$filter": flt, **params})
    return sorted(row[key] for row in result.rows)


def error(db, table, params) -> odata.ODataError:
    with pytest.raises(odata.ODataError) as info:
        run(db, table, params)
    return info.value


# -- comparisons --------------------------------------------------------------------------------


def test_string_equality_is_case_insensitive(db):
    assert names(db, "account", "name eq 'CONTOSO'") == ["Contoso"]


def test_string_with_escaped_quote(db):
    assert names(db, "contact", "lastname eq 'o''bryan'") == ["Ann O'Bryan"]


def test_number_comparisons_and_logic(db):
    assert names(db, "account", "numberofemployees ge 50 and revenue lt 100000") == ["Fabrikam"]
    assert names(db, "account", "numberofemployees lt 8 or numberofemployees gt 1000") == [
        "100% Natural",
        "Adventure Works",
        "Fabrikam",
    ]
    assert names(db, "account", "not (numberofemployees le 9)") == ["Contoso", "Fabrikam"]


def test_null_comparisons(db):
    assert names(db, "account", "revenue eq null") == [
        "100% Natural",
        "A_B Corp",
        "Adventure Works",
    ]
    assert names(db, "account", "revenue ne null") == ["Contoso", "Fabrikam"]


def test_boolean_literal_and_bare_boolean_column(db):
    assert names(db, "account", "creditonhold eq true") == ["Contoso"]
    assert names(db, "account", "creditonhold") == ["Contoso"]


def test_lookup_value_with_bare_guid(db):
    assert names(db, "account", f"_parentaccountid_value eq {CONTOSO.upper()}") == ["Fabrikam"]


def test_quoted_guid_on_lookup_is_a_type_error(db):
    err = error(db, "account", {"$filter": f"_parentaccountid_value eq '{CONTOSO}'"})
    assert "incompatible types" in str(err) and "'Edm.Guid' and 'Edm.String'" in str(err)


def test_column_to_column_comparison(db):
    assert names(db, "contact", "firstname eq lastname") == ["Smith smith"]


def test_datetime_literals_with_and_without_offset(db):
    cutoff = iso(NOW - dt.timedelta(hours=1))
    assert names(db, "lead", f"createdon gt {cutoff}") == ["half hour ago", "tomorrow"]
    local = (NOW - dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert names(db, "lead", f"createdon gt {local.isoformat()}") == ["half hour ago", "tomorrow"]


def test_date_literal_on_date_only_column(db):
    assert names(db, "contact", "birthdate lt 1989-01-01") == ["Smith smith"]


def test_single_valued_navigation_path(db):
    assert names(db, "account", "parentaccountid/name eq 'contoso'") == ["Fabrikam"]
    assert names(db, "account", f"primarycontactid/contactid eq {ANN}") == ["Contoso"]
    assert names(db, "contact", "parentcustomerid_account/name eq 'Contoso'") == ["Ann O'Bryan"]


def test_any_and_all_over_one_to_many(db):
    assert names(db, "account", "Account_Tasks/any(t:t/statecode eq 1)") == ["Contoso", "Fabrikam"]
    assert names(db, "account", "Account_Tasks/all(t:t/statecode eq 1)") == [
        "100% Natural",
        "A_B Corp",
        "Adventure Works",
        "Fabrikam",
    ]
    assert names(db, "account", "Account_Tasks/any()") == ["Contoso", "Fabrikam"]
    assert names(db, "contact", "Contact_Tasks/any()") == ["Ann O'Bryan"]


def test_lambda_may_refer_to_the_outer_row(db):
    flt = "Account_Tasks/any(t:contains(t/subject,$it/name))"
    assert names(db, "account", flt) == ["Contoso", "Fabrikam"]


# -- string functions and wildcards -------------------------------------------------------------


def test_contains_startswith_endswith(db):
    assert names(db, "account", "contains(name,'TOS')") == ["Contoso"]
    assert names(db, "account", "startswith(name,'fab')") == ["Fabrikam"]
    assert names(db, "account", "endswith(name,'works')") == ["Adventure Works"]
    assert names(db, "account", "not contains(name,'o')") == ["100% Natural", "Fabrikam"]


def test_sql_server_wildcards_inside_values(db):
    assert names(db, "account", "startswith(name,'c%o')") == ["Contoso"]
    assert names(db, "account", "startswith(name,'[ab]_')") == ["A_B Corp", "Adventure Works"]
    assert names(db, "account", "startswith(name,'[^abc]')") == ["100% Natural", "Fabrikam"]
    assert names(db, "account", "contains(name,'[%]')") == ["100% Natural"]


def test_other_functions_are_refused(db):
    err = error(db, "account", {"$filter": "tolower(name) eq 'x'"})
    assert "tolower" in str(err)


# -- Microsoft.Dynamics.CRM query functions -----------------------------------------------------

FN = "Microsoft.Dynamics.CRM."


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("Today(PropertyName='createdon')", ["half hour ago", "three hours ago"]),
        ("Yesterday(PropertyName='createdon')", ["yesterday"]),
        ("Tomorrow(PropertyName='createdon')", ["tomorrow"]),
        (
            "Last7Days(PropertyName='createdon')",
            ["half hour ago", "last week", "three hours ago", "yesterday"],
        ),
        ("Next7Days(PropertyName='createdon')", ["tomorrow"]),
        ("LastXHours(PropertyName='createdon',PropertyValue=2)", ["half hour ago"]),
        (
            "LastXDays(PropertyName='createdon',PropertyValue=1)",
            ["half hour ago", "three hours ago", "yesterday"],
        ),
        ("OlderThanXMonths(PropertyName='createdon',PropertyValue=3)", ["last year"]),
        (
            "OlderThanXHours(PropertyName='createdon',PropertyValue=2)",
            ["last month", "last week", "last year", "three hours ago", "yesterday"],
        ),
        (
            "ThisMonth(PropertyName='createdon')",
            ["half hour ago", "last week", "three hours ago", "tomorrow", "yesterday"],
        ),
        ("LastMonth(PropertyName='createdon')", ["last month"]),
        ("LastYear(PropertyName='createdon')", ["last year"]),
        (
            "ThisWeek(PropertyName='createdon')",
            ["half hour ago", "three hours ago", "tomorrow", "yesterday"],
        ),
        ("LastWeek(PropertyName='createdon')", ["last week"]),
        ("On(PropertyName='createdon',PropertyValue='2026-02-15')", ["last month"]),
        (
            "OnOrBefore(PropertyName='createdon',PropertyValue='2026-02-15')",
            ["last month", "last year"],
        ),
        (
            "OnOrAfter(PropertyName='createdon',PropertyValue='2026-03-11')",
            ["half hour ago", "three hours ago", "tomorrow"],
        ),
        (
            'Between(PropertyName=\'createdon\',PropertyValues=["2026-02-01","2026-03-04"])',
            ["last month", "last week"],
        ),
        (
            "EqualUserId(PropertyName='ownerid')",
            [
                "half hour ago",
                "last month",
                "last week",
                "last year",
                "three hours ago",
                "tomorrow",
                "yesterday",
            ],
        ),
        ("NotEqualUserId(PropertyName='ownerid')", []),
    ],
)
def test_date_and_user_query_functions(db, function, expected):
    assert names(db, "lead", FN + function) == expected


def test_date_functions_on_date_only_columns(db):
    assert names(db, "lead", FN + "Today(PropertyName='estimatedclosedate')") == [
        "half hour ago",
        "three hours ago",
    ]
    err = error(
        db,
        "lead",
        {"$filter": FN + "LastXHours(PropertyName='estimatedclosedate',PropertyValue=2)"},
    )
    assert "date-only" in str(err)


def test_between_in_notin_on_numbers_and_strings(db):
    between = FN + 'Between(PropertyName=\'numberofemployees\',PropertyValues=["5","50"])'
    assert names(db, "account", between) == [
        "100% Natural",
        "A_B Corp",
        "Adventure Works",
        "Contoso",
    ]
    not_between = FN + 'NotBetween(PropertyName=\'numberofemployees\',PropertyValues=["5","50"])'
    assert names(db, "account", not_between) == ["Fabrikam"]
    in_ = FN + 'In(PropertyName=\'name\',PropertyValues=["contoso","FABRIKAM"])'
    assert names(db, "account", in_) == ["Contoso", "Fabrikam"]
    not_in = FN + 'NotIn(PropertyName=\'numberofemployees\',PropertyValues=["5","7","9"])'
    assert names(db, "account", not_in) == ["Contoso", "Fabrikam"]


def test_query_function_arguments_from_aliases(db):
    result = run(
        db,
        "contact",
        {
            "$filter": FN + "In(PropertyName=@p1,PropertyValues=@p2)",
            "@p1": "'lastname'",
            "@p2": '["OBrian","O\'Bryan"]',
        },
    )
    assert [r["fullname"] for r in result.rows] == ["Ann O'Bryan"]
    x_days = run(
        db,
        "lead",
        {
            "$filter": FN + "LastXDays(PropertyName=@p1,PropertyValue=@p2)",
            "@p1": "'createdon'",
            "@p2": "0",
        },
    )
    assert sorted(r["subject"] for r in x_days.rows) == ["half hour ago", "three hours ago"]


def test_unknown_query_function(db):
    err = error(db, "lead", {"$filter": FN + "Someday(PropertyName='createdon')"})
    assert str(err).startswith(f"An unknown function with name '{FN}Someday' was found.")


# -- unknown names, aliases, options ------------------------------------------------------------


def test_unknown_property_in_filter_names_type_and_position(db):
    err = error(db, "account", {"$filter": "numberofemployees gt 1 and Name eq 'x'"})
    assert (
        str(err)
        == "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'."
    )
    assert err.position == 27


def test_unknown_property_in_select(db):
    err = error(db, "account", {"$select": "name,Name"})
    assert (
        str(err)
        == "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'."
    )
    assert err.position == 5


def test_filter_alias_and_unassigned_alias(db):
    assert names(db, "account", "name eq @n", **{"@n": "'Fabrikam'"}) == ["Fabrikam"]
    assert names(db, "account", "revenue eq @missing") == [
        "100% Natural",
        "A_B Corp",
        "Adventure Works",
    ]


@pytest.mark.parametrize("option", ["$skip", "$search", "$apply"])
def test_unsupported_options_are_refused(db, option):
    assert "not supported" in str(error(db, "account", {option: "1"}))


def test_bad_top_and_count_values(db):
    assert "$top" in str(error(db, "account", {"$top": "-1"}))
    assert "not a valid count option" in str(error(db, "account", {"$count": "yes"}))


def test_user_values_never_reach_sql_text(db):
    hostile = "x') OR 1=1 --"
    query = odata.compile_query(
        db.schema, "account", {"$filter": f"name eq '{hostile.replace(chr(39), chr(39) * 2)}'"}
    )
    assert hostile not in query.sql and hostile in query.params
    assert names(db, "account", f"name eq '{hostile.replace(chr(39), chr(39) * 2)}'") == []


# -- select, order, top, count -------------------------------------------------------------------


def test_select_lookup_by_value_name_returns_column_and_key(db):
    result = run(
        db, "account", {"$select": "name,_parentaccountid_value", "$filter": "name eq 'Fabrikam'"}
    )
    assert result.select == ["name", "parentaccountid"]
    row = result.rows[0]
    assert row["accountid"] == FABRIKAM and row["parentaccountid"] == CONTOSO
    assert row["parentaccountid__type"] == "account" and "versionnumber" in row
    assert "revenue" not in row


def test_orderby_several_keys_with_nulls_first_ascending(db):
    result = run(db, "account", {"$orderby": "revenue,name desc", "$select": "name"})
    assert [r["name"] for r in result.rows] == [
        "Adventure Works",
        "A_B Corp",
        "100% Natural",
        "Fabrikam",
        "Contoso",
    ]
    desc = run(db, "account", {"$orderby": "revenue desc,name", "$select": "name"})
    assert [r["name"] for r in desc.rows] == [
        "Contoso",
        "Fabrikam",
        "100% Natural",
        "A_B Corp",
        "Adventure Works",
    ]


def test_orderby_alias(db):
    result = run(db, "account", {"$orderby": "@o desc", "@o": "numberofemployees", "$top": "1"})
    assert [r["name"] for r in result.rows] == ["Fabrikam"]


def test_top_limits_rows_without_next_page(db):
    result = run(db, "account", {"$top": "2", "$orderby": "name"}, page_size=1)
    assert [r["name"] for r in result.rows] == ["100% Natural", "A_B Corp"]
    assert result.next_skiptoken is None


def test_count_true_counts_all_matches_not_the_page(db):
    result = run(
        db, "account", {"$count": "true", "$filter": "numberofemployees lt 100"}, page_size=2
    )
    assert (result.count, result.count_limit_exceeded, len(result.rows)) == (4, False, 2)
    assert run(db, "account", {}).count is None


def test_count_endpoint_applies_filter(db):
    assert (
        odata.count(
            db.conn, db.schema, "accounts", {"$filter": "creditonhold eq false"}, user_id=USER
        )
        == 4
    )


def test_entity_set_name_is_accepted(db):
    assert run(db, "accounts", {"$filter": "name eq 'Contoso'"}).table == "account"


# -- robustness -----------------------------------------------------------------------------------

_TOKENS = [
    "name",
    "revenue",
    "createdon",
    "eq",
    "ne",
    "gt",
    "and",
    "or",
    "not",
    "(",
    ")",
    "'a'",
    "'",
    "''",
    "1",
    "-1.5",
    "99999999999999999999",
    "1e999",
    "2026-13-45",
    "2026-01-01T25:00:00Z",
    "null",
    "true",
    "contains(",
    ",",
    "Account_Tasks/any(t:",
    "t/subject",
    "Account_Tasks/all(",
    "parentaccountid/name",
    "_parentaccountid_value",
    "00000000-0000-0000-0000-000000000000",
    "Microsoft.Dynamics.CRM.In(",
    "PropertyName='name'",
    'PropertyValues=["a"]',
    "PropertyValue=1",
    "Microsoft.Dynamics.CRM.LastXDays(",
    "@p1",
    "[",
    "]",
    "/",
    "$it",
    "any()",
    "=",
    '"q"',
    "%",
]


def test_random_token_soup_only_ever_raises_odata_errors(db):
    rng = random.Random(0)
    for _ in range(1500):
        params = {
            "$filter": " ".join(rng.choice(_TOKENS) for _ in range(rng.randint(1, 9))),
            "@p1": rng.choice(["'name'", "1", '["a"]', "@p1", "name", "'"]),
        }
        if rng.random() < 0.3:
            params["$orderby"] = rng.choice(
                ["name desc", "@p1", "name foo", "parentaccountid/name"]
            )
        if rng.random() < 0.3:
            params["$expand"] = rng.choice(
                ["Account_Tasks($top=99999999999999999999)", "x(", "ownerid($select=fullname)"]
            )
        with contextlib.suppress(odata.ODataError):
            run(db, "account", params)


def test_huge_filters_are_refused_cleanly(db):
    # More than 500 conditions: Dataverse's TooManyConditionsInQuery (webapi/query/filter-rows
    # #condition-limits); 500 are still fine.
    err = error(db, "account", {"$filter": " and ".join(["name eq 'x'"] * 3000)})
    assert str(err) == "Number of conditions in query exceeded maximum limit."
    assert err.code == "0x8004430C"
    run(db, "account", {"$filter": " or ".join(["name eq 'x'"] * 500)})
    err = error(db, "account", {"$filter": "not " * 3000 + "name eq 'x'"})
    assert "too complex" in str(err)


# -- cases from Microsoft's query documentation ---------------------------------------------------


def test_aliases_in_orderby_and_filter_as_documented(db):
    # accounts?$orderby=@p1 asc,@p2 desc&$filter=@p1 ne @p3&@p1=revenue&@p2=name
    result = run(
        db,
        "account",
        {
            "$select": "name,revenue",
            "$orderby": "@p1 asc,@p2 desc",
            "$filter": "@p1 ne @p3",
            "@p1": "revenue",
            "@p2": "name",
        },
    )
    assert [r["name"] for r in result.rows] == ["Fabrikam", "Contoso"]


def test_array_alias_with_single_quotes_is_invalid_json(db):
    err = error(
        db,
        "contact",
        {
            "$filter": FN + "In(PropertyName=@p1,PropertyValues=@p2)",
            "@p1": "'lastname'",
            "@p2": "['OBrian','O'Brian']",
        },
    )
    assert str(err).startswith("Invalid JSON. A comma character ',' was expected in scope 'Array'.")


def test_format_is_not_supported(db):
    assert "$format" in str(error(db, "account", {"$format": "json"}))


def test_lookup_path_over_several_levels(db):
    flt = "primarycontactid/parentcustomerid_account/name eq 'Contoso'"
    assert names(db, "account", flt) == ["Contoso"]


def test_nested_lambdas(db):
    flt = (
        "contact_customer_accounts/any(c:c/firstname eq 'ann' and "
        "c/Contact_Tasks/any(t:t/statecode eq 0))"
    )
    assert names(db, "account", flt) == ["Contoso"]


def test_collection_under_a_lookup_is_refused_in_lambda(db):
    err = error(
        db, "account", {"$filter": "primarycontactid/Contact_Tasks/any(t:t/statecode eq 0)"}
    )
    assert "any" in str(err)


def test_orderby_lookup_sorts_by_related_primary_name(db):
    # Fabrikam's parent is Contoso; the others have none (nulls first ascending)
    result = run(db, "contact", {"$orderby": "_parentcustomerid_value desc,fullname"})
    assert [r["fullname"] for r in result.rows] == ["Ann O'Bryan", "Smith smith"]
    tasks = run(db, "task", {"$orderby": "_regardingobjectid_value,subject", "$select": "subject"})
    # regarding names: Ann O'Bryan (contact), Contoso x2, Fabrikam
    assert [r["subject"] for r in tasks.rows] == [
        "Regarding a contact",
        "Call Contoso",
        "Mail Contoso",
        "Visit Fabrikam",
    ]


def test_pages_ordered_by_lookup_name_resume_after_the_last_row(db):
    params = {"$orderby": "_regardingobjectid_value desc", "$select": "subject"}
    first = run(db, "task", params, page_size=2)
    second = run(db, "task", params, page_size=2, skiptoken=first.next_skiptoken)
    seen = [r["subject"] for r in first.rows + second.rows]
    assert sorted(seen) == sorted(
        ["Regarding a contact", "Call Contoso", "Mail Contoso", "Visit Fabrikam"]
    )
    assert seen[0] == "Visit Fabrikam" and seen[-1] == "Regarding a contact"
    assert second.next_skiptoken is None
