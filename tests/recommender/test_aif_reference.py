"""Reference data: the fixed competence taxonomy and the two-digit region codes."""

from __future__ import annotations

from recommender import reference


def test_competence_taxonomy_has_the_fixed_ids() -> None:
    ids = reference.competence_ids()
    assert {"math", "physics", "informatics", "ai", "robotics", "teamwork", "vr_ar"} <= ids
    frame = reference.competences()
    assert list(frame.columns) == ["competence_id", "name_ru", "name_en", "parent_id"]
    assert frame.loc[frame["competence_id"] == "math", "parent_id"].tolist() == ["subjects"]


def test_region_codes_are_zero_padded_text() -> None:
    codes = reference.region_codes()
    assert "01" in codes and "77" in codes and "1" not in codes
    assert all(len(code) == 2 for code in codes)
    assert str(reference.regions()["region_code"].dtype) == "string"


def test_cached_frames_are_not_shared() -> None:
    frame = reference.regions()
    frame["region_code"] = "xx"
    assert "01" in reference.regions()["region_code"].tolist()
