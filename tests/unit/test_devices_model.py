"""Device ids, field rules and the CSV import format: every user mistake is one line naming its place."""

from __future__ import annotations

import datetime as dt

import pytest

from kappa.devices.model import DeviceError, make_device, parse_csv

pytestmark = pytest.mark.unit

BRIDGE = "kappa-bridge"
HEADER = "device_id,site_id,device_type,model,firmware,location,installed_at\n"


def test_csv_rows_become_devices() -> None:
    text = HEADER + "dev-1,site-a,thermo,T100,1.2.3,hall 2,2024-05-01T08:00:00Z\n\ndev_2,site-b,meter,,,,2024-05-02\n"
    first, second = parse_csv(text, BRIDGE)
    assert (first.device_id, first.site_id, first.device_type, first.model, first.firmware, first.location) == (
        "dev-1", "site-a", "thermo", "T100", "1.2.3", "hall 2")
    assert first.installed_at == dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC)
    assert second.model is None and second.location is None  # empty optional fields are NULL
    assert second.installed_at == dt.datetime(2024, 5, 2, tzinfo=dt.UTC)  # no zone: UTC


def test_csv_with_only_the_required_columns_in_any_order() -> None:
    (device,) = parse_csv("site_id,device_type,device_id\ns1,t,d1\n", BRIDGE)
    assert (device.device_id, device.site_id, device.device_type, device.model) == ("d1", "s1", "t", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("device_id,site_id\n", "line 1: missing column(s) device_type"),
        ("device_id,site_id,device_type,colour\n", "line 1: unknown column(s) colour"),
        ("device_id,site_id,device_type\nd1,s1,t\nd2,,t\n", "line 3: site_id is required"),
        ("device_id,site_id,device_type\nd1,s1\n", "line 2: expected 3 fields"),
        ("device_id,site_id,device_type\nd1,s1,t,extra\n", "line 2: expected 3 fields"),
        ("device_id,site_id,device_type\nd1,s1,t\nbad/id,s1,t\n", "line 3: invalid device id 'bad/id'"),
        ("device_id,site_id,device_type\nd1,s1,t\nd2,s,t\nd1,s2,t\n", "line 4: device d1 already on line 2"),
        ("device_id,site_id,device_type,installed_at\nd1,s1,t,yesterday\n", "line 2: invalid installed_at"),
        ("device_id,site_id,device_type\nkappa-bridge,s1,t\n", "line 2: device id 'kappa-bridge' is the bridge"),
        ("device_id,site_id,device_type\n\n", "no devices"),
    ],
)
def test_csv_mistakes_name_the_line(text: str, message: str) -> None:
    with pytest.raises(DeviceError) as err:
        parse_csv(text, BRIDGE, source="fleet.csv")
    assert message in str(err.value)
    assert str(err.value).startswith("fleet.csv")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("device_id", ["a+b", "a#", "x y", "-lead", "a:b", "", "é", "a" * 129])
def test_ids_that_would_change_a_topic_or_a_file_entry_are_refused(device_id: str) -> None:
    with pytest.raises(DeviceError):
        make_device({"device_id": device_id, "site_id": "s", "device_type": "t"}, BRIDGE)


def test_ids_allowed() -> None:
    for device_id in ("d1", "Sensor_01.a-b", "0" * 128):
        assert make_device({"device_id": device_id, "site_id": "s", "device_type": "t"}, BRIDGE).device_id == device_id
