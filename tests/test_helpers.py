"""The test helpers themselves: where reference data is looked up, and what its absence does."""

import pytest
from helpers import REQUIRE_REFERENCE, reference_dir


def test_reference_dir_prefers_the_variable_then_the_shared_folder(tmp_path, monkeypatch):
    (tmp_path / "reference" / "thing").mkdir(parents=True)
    monkeypatch.setenv("STYLECLI_SHARED", str(tmp_path))
    monkeypatch.delenv("STYLECLI_TEST_REF", raising=False)
    assert reference_dir("thing", "STYLECLI_TEST_REF") == tmp_path / "reference" / "thing"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("STYLECLI_TEST_REF", str(elsewhere))
    assert reference_dir("thing", "STYLECLI_TEST_REF") == elsewhere


def test_missing_reference_skips_or_fails_when_required(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECLI_SHARED", str(tmp_path))
    monkeypatch.delenv(REQUIRE_REFERENCE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="'absent' is absent"):
        reference_dir("absent")
    monkeypatch.setenv(REQUIRE_REFERENCE, "1")
    with pytest.raises(pytest.fail.Exception, match="STYLECLI_REQUIRE_REFERENCE=1"):
        reference_dir("absent")
    monkeypatch.setenv("STYLECLI_TEST_REF", str(tmp_path / "nowhere"))  # a variable naming nothing fails too
    with pytest.raises(pytest.fail.Exception, match="STYLECLI_TEST_REF="):
        reference_dir("absent", "STYLECLI_TEST_REF")
