from pathlib import Path

import pandas as pd
import pytest

from torchgeo_quake.datasets.taxonomy import (
    STRUCTURE_CLASSES,
    GEMTaxonomy,
    parse_taxonomy,
)

GEM_DIR = Path(__file__).parents[2] / ".." / "shared" / "data" / "gem"
GEM_FILES = [GEM_DIR / f"Exposure_{k}_Turkey_Adm1.csv" for k in ("Res", "Com", "Ind")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "CR/LFINF(MUR+CBH)+CDL+DUL/H:3/RES",
            {
                "material": "CR",
                "material_details": (),
                "lateral_system": "LFINF",
                "infill_material": ("MUR", "CBH"),
                "code_level": "CDL",
                "ductility": "DUL",
                "height_storeys": 3.0,
                "occupancy": "RES",
                "structure_class": "rc_infill",
            },
        ),
        (
            "MUR+CB99/LWAL+CDN/H:2",
            {
                "material": "MUR",
                "material_details": ("CB99",),
                "lateral_system": "LWAL",
                "code_level": "CDN",
                "ductility": "UNK",
                "height_storeys": 2.0,
                "occupancy": None,
                "structure_class": "urm",
            },
        ),
        (
            "CR+PC/LFM+CDL+DUL/H:1/RES",
            {
                "material": "CR",
                "material_details": ("PC",),
                "lateral_system": "LFM",
                "structure_class": "rc_other",
            },
        ),
        (
            "S/LFM+CDM/HBET:4-7/COM",
            {
                "material": "S",
                "code_level": "CDM",
                "height_storeys": 5.5,
                "occupancy": "COM",
                "structure_class": "steel",
            },
        ),
        (
            "W/LWAL/H:1",
            {
                "material": "W",
                "lateral_system": "LWAL",
                "code_level": "UNK",
                "height_storeys": 1.0,
                "structure_class": "wood",
            },
        ),
        (
            "UNK",
            {
                "material": "UNK",
                "lateral_system": "UNK",
                "code_level": "UNK",
                "ductility": "UNK",
                "height_storeys": None,
                "occupancy": None,
                "structure_class": "other",
            },
        ),
        (
            "MCF/LWAL+CDL/HEX:5",
            {
                "material": "MCF",
                "code_level": "CDL",
                "height_storeys": 5.0,
                "structure_class": "rm_confined",
            },
        ),
        # Forms of GEM's Turkey model.
        (
            "UNK+CDM+DUM/H:UNK/MIX1",
            {
                "material": "UNK",
                "lateral_system": "UNK",
                "code_level": "CDM",
                "ductility": "DUM",
                "height_storeys": None,
                "occupancy": "MIX1",
                "structure_class": "other",
            },
        ),
        (
            "CR/LFINF(MUR+CL)+CDL+DUL/HBET:10+/COM",
            {"height_storeys": 10.0, "infill_material": ("MUR", "CL")},
        ),
        ("CR/LWAL+CDM+DUM/HBET:7-9/RES", {"height_storeys": 8.0}),
        ("CR/LDUAL+CDH+DUC/H:12/RES", {"structure_class": "rc_wall_dual"}),
        ("MATO/LFM+CDL+DUL/H:1/IND", {"material": "MATO", "structure_class": "other"}),
        ("MUR+ADO/LFINF(MUR+ADO)+DNO/H:1", {"ductility": "DNO"}),
        # v2.0 forms: comma ranges, open bounds, dates, CDU/DU99, directions.
        ("CR/LFM+CDU+DU99/HBET:3,5/YBET:1970,1980", {"height_storeys": 4.0}),
        ("CR/LFM+CDU+DU99/HBET:3,5/YBET:1970,1980", {"code_level": "UNK"}),
        ("CR/LFM+CDU+DU99/HBET:3,5/YBET:1970,1980", {"year_built": 1975.0}),
        ("CR/LFM/H:>3/YPRE:1975", {"height_storeys": 4.0, "year_built": 1974.0}),
        ("CR/LFM/H:<4/YEX:1999", {"height_storeys": 2.0, "year_built": 1999.0}),
        (
            "DX+D99/CR/LFM+DUC/DY+D99/CR/LWAL+DNO/HEX:3/RES2",
            {
                "material": "CR",
                "lateral_system": "LFM",
                "ductility": "DUC",
                "occupancy": "RES2",
            },
        ),
        ("CR/CDL+DUL/H:2", {"lateral_system": "UNK", "code_level": "CDL"}),
        (" CR/LFM+CDL ", {"raw": "CR/LFM+CDL", "lateral_details": ()}),
        ("M99/LWAL/RSH1+RMT1/FW", {"structure_class": "urm"}),
        ("M99/LWAL/RSH1+RMT1/FW", {"other": ("RSH1", "RMT1", "FW")}),
    ],
)
def test_parse_examples(text: str, expected: dict[str, object]) -> None:
    parsed = parse_taxonomy(text)
    assert isinstance(parsed, GEMTaxonomy)
    for field, value in expected.items():
        assert getattr(parsed, field) == value, field


def test_lateral_coefficient_is_a_detail() -> None:
    parsed = parse_taxonomy("CR/LFM+LFC:5+CDL/H:2")
    assert parsed.lateral_system == "LFM"
    assert parsed.lateral_details == ("LFC:5",)
    assert parsed.code_level == "CDL"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty string"),
        ("   ", "empty string"),
        ("CR//H:1", "empty attribute group"),
        ("CR/LFM/", "empty attribute group"),
        ("CR/LFM++CDL", "empty code"),
        ("CR/LFINF(MUR+CBH/H:3", "unbalanced '('"),
        ("CR/LFINF)MUR(/H:3", "unbalanced ')'"),
        ("cr/lfm/h:1", "bad code 'cr'"),
        ("CR /LFM", "bad code 'CR '"),
        ("CR/LFM/H:abc", "bad code 'H:abc'"),
        ("XYZ/LFM", "unknown attribute code 'XYZ'"),
        ("CR/S/H:1", "material given twice"),
        ("CR/LFM/H:1/H:2", "height_storeys given twice"),
        ("CR/LFM+CDL+CDM", "code_level given twice"),
        ("CR+LFM/H:1", "code 'LFM' of another attribute"),
        ("CR/LFM+H:2", "code 'H:2' of another attribute"),
        ("CR/LFM/H:3+RES", "code 'RES' of another attribute"),
        ("CR/LFM/UNK", "'UNK' after material and lateral system"),
        ("CR/LFM/HBET:7-", "cannot read value '7-'"),
        ("CR/LFM/HBET:9-7", "empty range '9-7'"),
        ("CR/LFM/H:0", "'0' storeys"),
        ("CR/LFM/H", "H without a value"),
        ("CR:3/LFM", "bad code 'CR:3'"),
        ("CR+LFC:5/LFM", "code 'LFC:5' of another attribute"),
    ],
)
def test_parse_malformed(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid GEM taxonomy") as info:
        parse_taxonomy(text)
    assert reason in str(info.value)
    assert repr(text.strip()) in str(info.value)


def test_parse_not_a_string() -> None:
    with pytest.raises(TypeError, match="must be a string"):
        parse_taxonomy(float("nan"))  # type: ignore[arg-type]


def test_taxonomy_is_frozen_and_cached() -> None:
    parsed = parse_taxonomy("W/LWAL/H:1")
    with pytest.raises(AttributeError):
        parsed.material = "CR"  # type: ignore[misc]
    assert parse_taxonomy("W/LWAL/H:1") is parsed


def test_structure_classes_cover_every_mapping() -> None:
    strings = {
        "rc_infill": "CR/LFLSINF(MUR)/H:2",
        "rc_wall_dual": "SRC/LWAL/H:2",
        "rc_other": "C99/LFLS/H:2",
        "urm": "MUR+STRUB/LWAL+DNO/H:1",
        "rm_confined": "MR/LWAL/H:2",
        "steel": "ME/LFBR/H:1",
        "wood": "W/LPB/H:1",
        "other": "EU/LWAL/H:1",
    }
    assert set(strings) == set(STRUCTURE_CLASSES)
    for cls, text in strings.items():
        assert parse_taxonomy(text).structure_class == cls, text


def test_all_real_turkey_strings_parse() -> None:
    missing = [str(p) for p in GEM_FILES if not p.exists()]
    if missing:
        pytest.skip(f"GEM Turkey exposure files not available: {missing}")
    strings: set[str] = set()
    for path in GEM_FILES:
        strings |= set(pd.read_csv(path, usecols=["TAXONOMY"])["TAXONOMY"])
    assert len(strings) > 1000  # 1,783 distinct strings in the 2023 release
    parsed = [parse_taxonomy(s) for s in sorted(strings)]
    classes = {p.structure_class for p in parsed}
    assert {"rc_infill", "urm", "wood", "steel"} <= classes
    assert {p.code_level for p in parsed} <= {"CDN", "CDL", "CDM", "CDH", "UNK"}
    assert all(p.occupancy is not None for p in parsed)
    heights = [p.height_storeys for p in parsed if p.height_storeys is not None]
    assert min(heights) >= 1
    assert max(heights) == 10  # HBET:10+
