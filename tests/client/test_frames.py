"""JSON pages become DataFrames with dtypes from metadata; DataFrames become bulk input."""

import pandas as pd
import pytest

from d365nb.client.frames import FORMATTED, as_records, records_to_frame

ID1 = "00000000-0000-0000-0000-000000000001"
ID2 = "00000000-0000-0000-0000-000000000002"
USER = "00000000-0000-0000-0000-0000000000aa"


def page():
    return [
        {
            "@odata.etag": 'W/"1"',
            "activityid": ID1,
            "subject": "Call",
            "percentcomplete": 50,
            "scheduledend": "2026-03-01T09:00:00Z",
            "prioritycode": 2,
            f"prioritycode{FORMATTED}": "High",
            "isbilled": True,
            "budget": 10.5,
            "_ownerid_value": USER,
            f"_ownerid_value{FORMATTED}": "Ada Admin",
        },
        {
            "@odata.etag": 'W/"2"',
            "activityid": ID2,
            "subject": None,
            "percentcomplete": None,
            "scheduledend": None,
            "prioritycode": 0,
            f"prioritycode{FORMATTED}": "Low",
            "isbilled": None,
            "budget": None,
            "_ownerid_value": None,
        },
    ]


def test_index_is_the_primary_id_and_dtypes_follow_metadata(task_meta):
    df = records_to_frame(page(), task_meta)
    assert df.index.name == "activityid" and list(df.index) == [ID1, ID2]
    assert str(df["subject"].dtype) == "string"
    assert str(df["percentcomplete"].dtype) == "Int64"
    assert str(df["budget"].dtype) == "Float64"
    assert str(df["isbilled"].dtype) == "boolean"
    assert (
        str(df["scheduledend"].dtype).startswith("datetime64")
        and str(df["scheduledend"].dt.tz) == "UTC"
    )
    assert str(df["prioritycode"].dtype) == "Int64"
    assert df["percentcomplete"].isna().tolist() == [False, True]
    assert not any(c.startswith("@") or "@" in c for c in df.columns)


def test_labels_replace_choice_codes_and_add_lookup_label_columns(task_meta):
    df = records_to_frame(page(), task_meta, labels=True)
    assert df["prioritycode"].tolist() == ["High", "Low"]
    assert df["prioritycode"].dtype == "category"
    assert list(df["prioritycode"].cat.categories) == ["Low", "Normal", "High"]
    assert df.loc[ID1, "ownerid_label"] == "Ada Admin"
    assert df.loc[ID1, "_ownerid_value"] == USER


def test_empty_result_keeps_the_selected_columns(task_meta):
    df = records_to_frame([], task_meta, select=["subject", "_ownerid_value"])
    assert list(df.columns) == ["subject", "_ownerid_value"]
    assert len(df) == 0 and df.index.name == "activityid"


def test_empty_result_without_select_has_every_readable_column(task_meta):
    df = records_to_frame([], task_meta)
    assert "subject" in df.columns and "_regardingobjectid_value" in df.columns
    assert str(df["percentcomplete"].dtype) == "Int64"


def test_dataframe_rows_become_plain_records_with_index_as_key():
    frame = pd.DataFrame(
        {"subject": ["a", "b"], "percentcomplete": pd.array([1, None], dtype="Int64")},
        index=pd.Index([ID1, ID2], name="activityid"),
    )
    rows = as_records(frame, index_as="activityid")
    assert rows[0] == {"activityid": ID1, "subject": "a", "percentcomplete": 1}
    assert type(rows[0]["percentcomplete"]) is int
    assert rows[1]["percentcomplete"] is pd.NA


def test_a_default_range_index_is_not_taken_as_ids():
    rows = as_records(pd.DataFrame({"subject": ["a"]}), index_as="activityid")
    assert rows == [{"subject": "a"}]


def test_a_single_dict_is_refused_as_bulk_input():
    with pytest.raises(TypeError):
        as_records({"subject": "a"}, index_as=None)
