#!/usr/bin/env python3

"""Generate the tiny GEM exposure fixtures of tests/datasets/test_gem.py.

Run from anywhere: ``python tests/data/gem/data.py``. The CSVs are written next to
this script and committed with it. Values are chosen to be checked by hand; see
the expected numbers in the tests.
"""

import os

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))

# OpenQuake exposure form (docs/dev/contracts.md).
POINT_COLUMNS = [
    "id",
    "lon",
    "lat",
    "taxonomy",
    "number",
    "area",
    "structural",
    "nonstructural",
    "contents",
    "day",
    "night",
    "transit",
    "period",
    "ID_1",
    "NAME_1",
]

KM = ("TR-46", "KAHRAMANMARAŞ")
OS = ("TR-80", "OSMANİYE")

# Three locations: A (36.90, 37.58) with two assets, B 0.05 deg east of A and
# C 0.02 deg north of A with two assets each.
POINTS = [
    # id, lon, lat, taxonomy, number, area,
    # structural, nonstructural, contents, day, night, transit, period, ID_1, NAME_1
    [
        *("a1", 36.90, 37.58, "CR/LFINF(MUR+CBH)+CDL+DUL/H:3/RES", 3, 900),
        *(300000, 450000, 150000, 6, 12, 3, "1980-1990", *KM),
    ],
    [
        *("a2", 36.90, 37.58, "MUR+CLBRS/LWAL+DNO/H:2/RES", 1, 120),
        *(50000, 30000, 20000, 1, 3, 1, "1960-1970", *KM),
    ],
    [
        *("b1", 36.95, 37.58, "S/LFM+CDM/HBET:4-7/COM", 2, 1200),
        *(800000, 1000000, 600000, 40, 4, 10, "2000-2010", *KM),
    ],
    [
        *("c1", 36.90, 37.60, "W/LWAL/H:1/RES", 4, 400),
        *(40000, 40000, 20000, 2, 8, 2, "", *OS),
    ],
    [
        *("c2", 36.90, 37.60, "CR/LWAL+CDM+DUM/H:6/IND", 1, 2000),
        *(500000, 300000, 700000, 30, 0, 5, "1998-2008", *OS),
    ],
]

# GEM's aggregated Adm1 form (no coordinates).
ADMIN_COLUMNS = [
    "ID_0",
    "NAME_0",
    "ID_1",
    "NAME_1",
    "SETTLEMENT",
    "OCCUPANCY",
    "TAXONOMY",
    "BUILDINGS",
    "TOTAL_REPL_COST_USD",
    "COST_STRUCTURAL_USD",
    "COST_NONSTRUCTURAL_USD",
    "COST_CONTENTS_USD",
    "TOTAL_AREA_SQM",
    "OCCUPANTS_PER_ASSET",
    "OCCUPANTS_PER_ASSET_DAY",
    "OCCUPANTS_PER_ASSET_NIGHT",
    "OCCUPANTS_PER_ASSET_TRANSIT",
]


def admin_row(unit: tuple[str, str], occupancy: str, taxonomy: str, n: int) -> list:
    structural, nonstructural, contents = 100000 * n, 150000 * n, 50000 * n
    return [
        "TUR",
        "Turkey",
        *unit,
        "Total",
        occupancy,
        taxonomy,
        n,
        structural + nonstructural + contents,
        structural,
        nonstructural,
        contents,
        100 * n,
        4 * n,
        1 * n,
        4 * n,
        2 * n,
    ]


ADMIN = [
    admin_row(KM, "Res", "CR/LFINF(MUR+CBH)+CDL+DUL/H:3/RES", 10),
    admin_row(KM, "Res", "MUR+STRUB/LWAL+DNO/H:1/MIX1", 10),
    admin_row(KM, "Com", "CR+PC/LFM+CDM+DUM/H:1/COM", 5),
    admin_row(OS, "Ind", "S/LFBR+CDM+DUM/H:1/IND", 2),
    admin_row(OS, "Res", "W/LWAL+DNO/H:2/RES", 8),
]


def write(name: str, rows: list[list], columns: list[str]) -> None:
    pd.DataFrame(rows, columns=columns).to_csv(os.path.join(HERE, name), index=False)


def main() -> None:
    write("points.csv", POINTS, POINT_COLUMNS)

    # Same assets as A and B with GEM's upper-case names and no period column.
    aliases = [
        [r[1], r[2], r[3], r[4], r[6], r[7], r[8], r[6] + r[7] + r[8], r[9], r[10]]
        for r in POINTS[:3]
    ]
    write(
        "points_aliases.csv",
        aliases,
        [
            "Longitude",
            "LATITUDE",
            "TAXONOMY",
            "BUILDINGS",
            "COST_STRUCTURAL_USD",
            "COST_NONSTRUCTURAL_USD",
            "COST_CONTENTS_USD",
            "TOTAL_REPL_COST_USD",
            "OCCUPANTS_PER_ASSET_DAY",
            "OCCUPANTS_PER_ASSET_NIGHT",
        ],
    )
    write("admin.csv", ADMIN, ADMIN_COLUMNS)

    # Bad inputs.
    write(
        "missing_columns.csv",
        [[r[1], r[2], r[3], r[4]] for r in POINTS],
        ["lon", "lat", "taxonomy", "number"],
    )
    open(os.path.join(HERE, "empty.csv"), "w").close()
    write("header_only.csv", [], POINT_COLUMNS)
    bad = [list(r) for r in POINTS[:3]]
    bad[1][3] = "CR/LFINF(MUR+CBH/H:3/RES"  # unbalanced parenthesis, on line 3
    write("bad_taxonomy.csv", bad, POINT_COLUMNS)
    non_numeric = [list(r) for r in POINTS[:2]]
    non_numeric[1][6] = "12x"  # structural cost, on line 3
    write("non_numeric.csv", non_numeric, POINT_COLUMNS)
    bad_period = [list(r) for r in POINTS[:2]]
    bad_period[0][12] = "sometime"  # on line 2
    write("bad_period.csv", bad_period, POINT_COLUMNS)

    # NaN cells: two rows without coordinates and two without a usable number of
    # buildings are skipped; NaN costs/occupants become 0 and an empty taxonomy
    # UNK, all counted.
    nan_rows = [list(r) for r in POINTS[:3]]
    nan_rows[0][7] = None  # nonstructural of a1
    nan_rows[2][10] = None  # night of b1
    extra = [list(POINTS[3]) for _ in range(5)]
    extra[0][1] = None  # lon
    extra[1][2] = None  # lat
    extra[2][4] = None  # number
    extra[3][4] = 0  # number
    extra[4][3] = ""  # taxonomy -> UNK (kept)
    write("nan_cells.csv", nan_rows + extra, POINT_COLUMNS)


if __name__ == "__main__":
    main()
