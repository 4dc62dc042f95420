"""The journeys' pure parts on their own: docstring examples, texts in step across languages,
which tokens a manufacturer may hand out, rate-limit settings, notifier choice."""

from __future__ import annotations

import json

import pytest

from resolver import i18n, problems
from resolver.access.grants import GrantForbidden, GrantRefused, check_grant
from resolver.access.ratelimit import parse_limits
from resolver.access.tokens import TokenIssuer

GTIN = "09506000134352"


def test_every_language_has_every_text_with_the_same_placeholders():
    import re

    texts = {lang: json.loads((i18n.DIRECTORY / f"{lang}.json").read_text()) for lang in i18n.available()}
    assert set(texts) >= {"en", "de"}
    for lang, table in texts.items():
        assert set(table) == set(texts["en"]), lang
        def names(text: str | dict[str, str]) -> set[str]:  # a plural is a map of CLDR categories
            return set(re.findall(r"{(\w+)}", " ".join(text.values()) if isinstance(text, dict) else text))

        for key, text in table.items():
            assert names(text) == names(texts["en"][key]), (lang, key)


def _caller(role="manufacturer", **scope):
    issuer = TokenIssuer(b"k" * 32)
    return issuer.verifier().verify(issuer.issue("mfr:qa", role, ttl=600, **scope))


@pytest.mark.parametrize("body, status, field", [
    ({"role": "admin", "principal": "x", "gtins": [GTIN]}, 403, "role"),
    ({"role": "owner", "principal": "x", "gtins": [GTIN]}, 403, "role"),
    ({"role": "wizard", "principal": "x", "gtins": [GTIN]}, 422, "role"),
    ({"role": "technician", "principal": "x", "gtins": ["04012345000009"]}, 403, "gtins[0]"),
    ({"role": "technician", "principal": "x", "prefixes": ["401234"]}, 403, "prefixes[0]"),
    ({"role": "technician", "principal": "x", "all_products": True}, 403, "all_products"),
    ({"role": "technician", "principal": "x"}, 422, "gtins"),
    ({"role": "technician", "principal": "x", "ttl": 30 * 3600, "unit": {"gtin": GTIN, "serial": "A"}}, 422, "ttl"),
    ({"role": "regulator", "principal": "x", "unit": {"gtin": GTIN, "serial": "A"}}, 422, "unit"),
    ({"role": "technician", "principal": "", "gtins": [GTIN]}, 422, "principal"),
    ({"role": "technician", "principal": "x", "gtins": [GTIN], "colour": "red"}, 422, "colour"),
])
def test_a_manufacturer_hands_out_tokens_only_within_its_own_scope(body, status, field):
    with pytest.raises((GrantRefused, GrantForbidden)) as refused:
        check_grant(_caller(prefixes=["9506000"]), body, 1_750_000_000)
    assert (problems.classify(refused.value).status, refused.value.field) == (status, field)


def test_a_per_visit_token_names_its_unit_and_stays_short():
    grant = check_grant(_caller(gtins=[GTIN]), {"role": "technician", "principal": "tech:ana", "ttl": 4 * 3600,
                                                "unit": {"gtin": GTIN, "serial": "A1"}}, 1_750_000_000)
    assert grant["unit"] == [GTIN, "A1"] and grant["gtins"] == [GTIN] and grant["exp"] - grant["iat"] == 4 * 3600
    assert grant["issued_by"] == "mfr:qa"
    admin = check_grant(_caller("admin", all_products=True), {"role": "manufacturer", "principal": "m",
                                                             "all_products": True}, 1_750_000_000)
    assert admin["all"] is True


def test_rate_limit_settings_are_checked():
    assert parse_limits("claim=3/60")["claim"].count == 3
    for bad in ("claim=3", "nonsense=1/1", "claim=0/60"):
        with pytest.raises(ValueError, match="SERIALINK_RATE_LIMITS"):
            parse_limits(bad)


def test_the_notifier_is_chosen_by_the_settings(tmp_path):
    from resolver.journeys import notify
    from settings import load_settings

    def chosen(env):
        settings = load_settings(env=env, data_dir=tmp_path)
        return settings, notify.from_settings(settings)

    assert isinstance(chosen({})[1], notify.FileNotifier)
    assert isinstance(chosen({"SERIALINK_NOTIFIER": "console"})[1], notify.ConsoleNotifier)
    settings, plugged = chosen({"SERIALINK_NOTIFIER": "tests.test_twin_api_modules:Outbox"})
    assert type(plugged).__name__ == "Outbox" and plugged.settings is settings
    with pytest.raises(ValueError, match="module:callable"):
        chosen({"SERIALINK_NOTIFIER": "smtp"})


class Outbox:
    """A notifier as a deployment would plug one in: ``module:callable(settings)``."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.sent: list = []

    async def send(self, notification) -> None:
        self.sent.append(notification)


def test_staff_histories_keep_an_owner_pseudonymous():
    from resolver.journeys.views import Snapshot, manufacturer_view, technician_view
    from twin.events import Actor, make_event
    from twin.lifecycle import State
    from twin.unit import Unit

    unit = Unit(GTIN, "S1", State.END_OF_LIFE, 2, owner="o_private-owner")
    events = [make_event("service", Actor("technician", "tech:ana"), "visit", summary="pump"),
              make_event("end_of_life", Actor("owner", "o_private-owner"), "recycled")]
    snap = Snapshot(unit, True, False, False)
    tech = technician_view(snap, "Boiler", {}, None, events)
    assert [e["by"] for e in tech["history"]] == ["tech:ana", "owner"] and "o_private-owner" not in str(tech)
    brand = manufacturer_view(snap, "Boiler", {}, None, events, [], "https://id.example.com/dpp")
    assert brand["history"][1]["by"] == "o_private-owner"  # the brand counts owners by their pseudonymous id
