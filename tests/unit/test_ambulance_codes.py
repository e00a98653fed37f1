"""Which codes make an ambulance call one for respiratory infection: ICD-10 J00-J22,
U07.1 and U07.2 by default, and the dispatch system's own codes when configured."""

import pytest

from citybots.settings import SettingsError, load_settings
from services.ambulance_rows import CodeSet


def test_the_default_codes_are_acute_respiratory_infections_and_covid() -> None:
    codes = CodeSet()
    for code in ("J00", "J06.9", "j18.9", "J22", "U07.1", "U07.2"):
        assert code in codes, code
    for code in ("J23", "J45.0", "U07.3", "I21.0", "J", "", "J1"):
        assert code not in codes, code


def test_a_dispatch_system_s_own_codes_and_ranges_are_configurable() -> None:
    codes = CodeSet("J09-J18, RESP-1, ORVI")
    assert "J10.1" in codes
    assert "RESP-1" in codes
    assert "orvi" in codes
    assert "J20" not in codes


def test_a_bad_codes_setting_stops_the_start_with_the_setting_named() -> None:
    with pytest.raises(SettingsError, match="AMBULANCE_CODES"):
        load_settings(_env_file=None, ambulance_codes=" , ")
    with pytest.raises(SettingsError, match="AMBULANCE_CODES"):
        load_settings(_env_file=None, ambulance_codes="X" * 21)
