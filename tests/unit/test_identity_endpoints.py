"""Notification endpoints: their validation, and ``set_notify_endpoints`` on a real network folder.

What is real: a network folder from ``init_network`` (CA, keys, signed directory), the files written and the
CA signature checked by ``load_directory``. Nothing is replaced.
"""

from __future__ import annotations

import json
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.core.identity.directory_codec import dump_directory
from services.core.identity.endpoints import set_notify_endpoints
from services.core.identity.errors import (
    DirectoryError,
    DirectorySignatureError,
    KeystoreError,
    UnknownOrganisationError,
)
from services.core.identity.keystore import NetworkLayout, load_directory
from services.core.identity.network import init_network
from services.core.identity.records import NotifyEndpoints
from services.core.identity.webhook_secrets import (
    load_webhook_secrets,
    org_webhook_secret_path,
    read_webhook_secret,
    webhook_secret_path,
)

ORG = "alb-cus-01"
WEBHOOK = "https://partner.example/hooks/alb-cus-01"
EMAIL = "guardia@albergue.example"
LATER = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)


# -- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://partner.example/hooks/alb-cus-01",
    "https://partner.example:8443/hooks?org=alb-cus-01",
    "https://partner.example",
    "https://192.0.2.10/notify",
    "http://127.0.0.1:8080/hooks/alb-cus-01",
    "http://localhost:9000/",
    "http://[::1]:9000/hooks",
])
def test_webhook_urls_that_are_accepted(url):
    assert NotifyEndpoints(webhook_url=url).webhook_url == url


@pytest.mark.parametrize(("url", "reason"), [
    ("http://partner.example/hooks", "only to 127.0.0.1, ::1 or localhost"),
    ("http://127.0.0.2/hooks", "only to 127.0.0.1, ::1 or localhost"),
    ("http://127.0.0.1.partner.example/hooks", "only to 127.0.0.1, ::1 or localhost"),
    ("ftp://partner.example/hooks", "expected https://host"),
    ("partner.example/hooks", "expected https://host"),
    ("https:///hooks", "expected https://host"),
    ("https://user:pass@partner.example/hooks", "must not carry credentials"),
    ("https://token@partner.example/hooks", "must not carry credentials"),
    ("https://partner.example/hooks#top", "fragment"),
    ("https://partner.example:99999/hooks", "not a URL"),
    ("https://partner.example:port/hooks", "not a URL"),
    ("https://partner.example/hooks path", "without spaces"),
    ("https://partner.example/hooks\r\nX-Injected: 1", "without spaces"),
    ("https://partner.example/" + "a" * 2048, "at most 2048"),
])
def test_webhook_urls_that_are_refused_name_the_field(url, reason):
    with pytest.raises(DirectoryError, match=reason) as raised:
        NotifyEndpoints(webhook_url=url)
    assert raised.value.field == "notify.webhook_url"


@pytest.mark.parametrize("email", [EMAIL, "alb-cus-01@inbox.referralnet.invalid", "a.b+notices@x", "o'brien@a.b"])
def test_email_addresses_that_are_accepted(email):
    assert NotifyEndpoints(email=email).email == email


@pytest.mark.parametrize("email", [
    "guardia", "@albergue.example", "guardia@", "a@b@c", "guardia @albergue.example", "guardia@albergue example",
    "guardia@albergue.example\nBcc: otro@x.example", "Guardia <guardia@albergue.example>",
    "a@b.example,c@d.example", "a@b.example;c@d.example", ".a@b.example", "a..b@c.example", "a@-b.example",
    "a@b.example.", "x" * 250 + "@b.example",
])
def test_email_addresses_that_are_refused_name_the_field(email):
    with pytest.raises(DirectoryError) as raised:
        NotifyEndpoints(email=email)
    assert raised.value.field == "notify.email"


def test_endpoints_need_at_least_one_of_the_two():
    with pytest.raises(DirectoryError, match="give a webhook_url, an email or both") as raised:
        NotifyEndpoints()
    assert raised.value.field == "notify"


# -- set_notify_endpoints on a network folder ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One network made for the module; each test changes its own copy."""
    folder = tmp_path_factory.mktemp("pristine") / "net"
    init_network(folder)
    return folder


@pytest.fixture
def network(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "net"
    shutil.copytree(pristine, copy)
    return copy


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def org_json(folder: Path, org_id: str) -> dict[str, object]:
    document = json.loads(NetworkLayout(folder).directory.read_bytes())
    [org] = [org for org in document["organisations"] if org["org_id"] == org_id]
    return dict(org)


def test_setting_endpoints_re_signs_the_directory_with_the_next_serial(network):
    before = load_directory(network)
    returned = set_notify_endpoints(network, ORG, webhook_url=WEBHOOK, email=EMAIL, now=LATER)

    reloaded = load_directory(network)  # verifies the CA's signature over the new bytes
    assert dump_directory(reloaded) == dump_directory(returned) == NetworkLayout(network).directory.read_bytes()
    assert (reloaded.serial, reloaded.issued_at) == (before.serial + 1, LATER)
    assert reloaded.org(ORG).notify == NotifyEndpoints(webhook_url=WEBHOOK, email=EMAIL)
    assert org_json(network, ORG)["notify"] == {"email": EMAIL, "webhook_url": WEBHOOK}
    others = [org for org in reloaded.organisations if org.org_id != ORG]
    assert others == [org for org in before.organisations if org.org_id != ORG]
    assert all("notify" not in org_json(network, org.org_id) for org in others)


def test_a_webhook_gets_a_secret_in_both_files(network):
    set_notify_endpoints(network, ORG, webhook_url=WEBHOOK)
    secret = read_webhook_secret(webhook_secret_path(network, ORG))
    assert read_webhook_secret(org_webhook_secret_path(network, ORG)) == secret
    assert load_webhook_secrets(network) == {ORG: secret}
    assert org_json(network, ORG)["notify"] == {"email": "", "webhook_url": WEBHOOK}
    assert secret.hex() not in NetworkLayout(network).directory.read_text()


def test_an_email_alone_writes_no_secret(network):
    set_notify_endpoints(network, ORG, email=EMAIL)
    assert load_webhook_secrets(network) == {}
    assert not org_webhook_secret_path(network, ORG).exists()
    assert org_json(network, ORG)["notify"] == {"email": EMAIL, "webhook_url": ""}


def test_setting_the_same_endpoints_again_changes_nothing(network):
    set_notify_endpoints(network, ORG, webhook_url=WEBHOOK, email=EMAIL, now=LATER)
    before = files_of(network)
    again = set_notify_endpoints(network, ORG, webhook_url=WEBHOOK, email=EMAIL)
    assert files_of(network) == before
    assert again.serial == 2


def test_rotating_replaces_the_secret_and_keeps_the_directory(network):
    set_notify_endpoints(network, ORG, webhook_url=WEBHOOK)
    old = load_webhook_secrets(network)[ORG]
    directory_bytes = NetworkLayout(network).directory.read_bytes()
    set_notify_endpoints(network, ORG, webhook_url=WEBHOOK, rotate_secret=True)
    new = load_webhook_secrets(network)[ORG]
    assert new != old
    assert read_webhook_secret(org_webhook_secret_path(network, ORG)) == new
    assert NetworkLayout(network).directory.read_bytes() == directory_bytes


def test_changing_the_url_keeps_the_secret(network):
    set_notify_endpoints(network, ORG, webhook_url=WEBHOOK)
    secret = load_webhook_secrets(network)[ORG]
    changed = set_notify_endpoints(network, ORG, webhook_url="https://partner.example/v2/hooks")
    assert changed.serial == 3
    assert load_webhook_secrets(network)[ORG] == secret


def test_clearing_restores_the_organisations_original_entry(network):
    original = org_json(network, ORG)
    set_notify_endpoints(network, ORG, webhook_url=WEBHOOK, email=EMAIL)
    cleared = set_notify_endpoints(network, ORG)
    assert cleared.org(ORG).notify is None
    assert cleared.serial == 3
    assert org_json(network, ORG) == original
    assert load_directory(network).serial == 3


def test_a_lost_organisation_copy_is_restored_on_the_next_run(network):
    set_notify_endpoints(network, ORG, webhook_url=WEBHOOK)
    secret = load_webhook_secrets(network)[ORG]
    org_webhook_secret_path(network, ORG).unlink()
    set_notify_endpoints(network, ORG, webhook_url=WEBHOOK)
    assert read_webhook_secret(org_webhook_secret_path(network, ORG)) == secret


def test_an_unknown_organisation_is_a_clear_error_and_nothing_is_written(network):
    before = files_of(network)
    with pytest.raises(UnknownOrganisationError, match="no organisation 'alb-xyz-01' in the directory"):
        set_notify_endpoints(network, "alb-xyz-01", webhook_url=WEBHOOK)
    assert files_of(network) == before


@pytest.mark.parametrize(("arguments", "field"), [
    ({"webhook_url": "http://partner.example/hooks"}, "notify.webhook_url"),
    ({"webhook_url": WEBHOOK, "email": "two@a.example three@b.example"}, "notify.email"),
    ({"email": EMAIL, "rotate_secret": True}, "notify.webhook_url"),
])
def test_bad_endpoints_name_the_field_and_write_nothing(network, arguments, field):
    before = files_of(network)
    with pytest.raises(DirectoryError) as raised:
        set_notify_endpoints(network, ORG, **arguments)
    assert raised.value.field == field
    assert files_of(network) == before


def test_a_tampered_directory_is_not_re_signed(network):
    layout = NetworkLayout(network)
    tampered = layout.directory.read_bytes().replace(b'"serial":1', b'"serial":7')
    layout.directory.write_bytes(tampered)
    with pytest.raises(DirectorySignatureError):
        set_notify_endpoints(network, ORG, webhook_url=WEBHOOK)
    assert layout.directory.read_bytes() == tampered
    assert not (network / "notify").exists()


def test_a_folder_without_the_ca_key_cannot_change_the_directory(network):
    (NetworkLayout(network).ca_key).unlink()
    with pytest.raises(KeystoreError, match=r"ca\.key is missing"):
        set_notify_endpoints(network, ORG, email=EMAIL)


def test_a_folder_that_is_no_network_is_named(tmp_path):
    with pytest.raises(KeystoreError, match="is this a network folder"):
        set_notify_endpoints(tmp_path, ORG, email=EMAIL)


def test_concurrent_changes_are_serialised_and_none_is_lost(network):
    orgs = [org.org_id for org in load_directory(network).organisations][:4]
    errors: list[BaseException] = []

    def change(org_id: str) -> None:
        try:
            set_notify_endpoints(network, org_id, email=f"{org_id}@inbox.referralnet.invalid")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=change, args=(org_id,)) for org_id in orgs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    final = load_directory(network)
    assert final.serial == 1 + len(orgs)
    assert {org_id: final.org(org_id).notify for org_id in orgs} == {
        org_id: NotifyEndpoints(email=f"{org_id}@inbox.referralnet.invalid") for org_id in orgs}
