"""Frames that export anywhere: time zones (``convert_tz``) and files (``save_frame``).

Dataverse sends datetimes in UTC; Excel cannot hold a time zone, so a frame picks the wall time
it exports. A frame converted to another zone still writes back only its changed cells.
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from d365nb.client.errors import ValidationError
from d365nb.client.saving import convert_tz, save_frame


@pytest.fixture
def leads(empty_d365):
    for i in range(3):
        empty_d365.create("leads", {"lastname": f"Tz{i}", "subject": f"s{i}"})
    return empty_d365


def test_zones_keep_the_instant_and_naive_is_utc_wall_time(leads):
    df = leads.list("leads", select="lastname,createdon")
    tokyo = convert_tz(df, "Asia/Tokyo")
    assert str(tokyo["createdon"].dt.tz) == "Asia/Tokyo"
    assert (tokyo["createdon"] == df["createdon"]).all()  # same instants
    naive = convert_tz(df, "naive")
    assert naive["createdon"].dt.tz is None
    assert list(naive["createdon"]) == list(df["createdon"].dt.tz_localize(None))
    assert str(convert_tz(df, "local")["createdon"].dt.tz) not in ("None", "")
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Base'"):
        convert_tz(df, "Mars/Base")


@pytest.mark.parametrize("tz", ["Asia/Tokyo", "naive", "local"])
def test_a_converted_frame_still_writes_back_only_its_edits(leads, tz):
    df = convert_tz(leads.list("leads", select="lastname,subject,createdon"), tz)
    assert leads.update_many("leads", df, dry_run=True).plan.ids == []
    df.loc[df.index[0], "subject"] = "edited"
    plan = leads.update_many("leads", df, dry_run=True).plan
    assert list(plan.changes["column"]) == ["subject"]


def test_xlsx_csv_parquet_round_trip(leads, tmp_path):
    pytest.importorskip("openpyxl")
    pytest.importorskip("pyarrow")
    df = convert_tz(leads.list("leads", select="lastname,createdon"), "Europe/Paris")
    save_frame(df, tmp_path / "a.xlsx")
    back = pd.read_excel(tmp_path / "a.xlsx", index_col=0)
    assert list(back["createdon"]) == list(df["createdon"].dt.tz_localize(None))  # Paris wall time
    save_frame(df, tmp_path / "a.parquet")
    assert (pd.read_parquet(tmp_path / "a.parquet")["createdon"] == df["createdon"]).all()
    save_frame(df, tmp_path / "a.csv")
    assert list(pd.read_csv(tmp_path / "a.csv", index_col=0)["lastname"]) == list(df["lastname"])


def test_bad_targets_are_refused_before_writing(tmp_path):
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(ValidationError, match=r"use a \.csv, \.parquet or \.xlsx"):
        save_frame(frame, tmp_path / "a.json")
    with pytest.raises(ValidationError, match="does not exist"):
        save_frame(frame, tmp_path / "missing" / "a.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_extra_gets_a_one_line_install_hint(tmp_path):
    """Run in a fresh interpreter where importing pyarrow fails, as on an install without it."""
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'pyarrow':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import pandas as pd\n"
        "from d365nb.client.saving import save_frame\n"
        "try:\n"
        f"    save_frame(pd.DataFrame({{'a': [1]}}), {str(tmp_path / 'x.parquet')!r})\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "MissingExtra saving .parquet needs pyarrow: pip install 'd365nb[save]' "
        "(or pip install pyarrow)"
    )
    assert not (tmp_path / "x.parquet").exists()
