"""The ``[guard]`` settings: validated with the key and the reason, read from the configuration
file and changed live like the other tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, config_from_mapping, config_to_toml, parse_setting
from server.config import load_config as load
from storm import GuardMode, GuardSettings, GuardSettingsError


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"mode": "panic"}, "mode"),
        ({"customer_max_orders": 0}, "customer_max_orders"),
        ({"customer_window_s": 1.5}, "customer_window_s"),
        ({"destination_fresh_share": 1.5}, "destination_fresh_share"),
        ({"volume_storm_ratio": 1.2}, "volume_storm_ratio"),
        ({"storm_orders": 100}, "storm_orders"),
        ({"deprioritise_level": 3, "quarantine_level": 3}, "deprioritise_level"),
        ({"quarantine_level": 4}, "quarantine_level"),
        ({"volume_window_s": 700}, "volume_window_s"),
        ({"level_hold_s": True}, "level_hold_s"),
    ],
)
def test_bad_settings_name_the_key(changes: dict[str, object], key: str) -> None:
    with pytest.raises(GuardSettingsError) as err:
        GuardSettings(**changes)  # type: ignore[arg-type]
    assert err.value.field == key
    assert str(err.value).startswith(f"guard.{key}=")


def test_the_guard_table_is_read_validated_written_and_parsed() -> None:
    config = config_from_mapping({"guard": {"mode": "flag", "customer_max_orders": 6}})
    assert config.guard.guard_mode is GuardMode.FLAG and config.guard.customer_max_orders == 6
    assert "[guard]" in config_to_toml(config)
    with pytest.raises(ConfigError) as err:
        config_from_mapping({"guard": {"customer_max_order": 6}})
    assert err.value.key == "guard.customer_max_order"
    with pytest.raises(ConfigError) as err:
        config_from_mapping({"guard": {"mode": "panic"}})
    assert err.value.key == "guard.mode" and "auto" in err.value.reason
    assert parse_setting("guard.destination_fresh_share", "1") == (
        "guard",
        "destination_fresh_share",
        1.0,
    )


def test_the_shipped_file_documents_every_guard_setting() -> None:
    shipped = load(env={})
    assert shipped.guard == GuardSettings()
    text = (Path(__file__).resolve().parents[2] / "config" / "dispatch.toml").read_text()
    for name in GuardSettings().to_dict():
        assert f"\n{name} = " in text, name
