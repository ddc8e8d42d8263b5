"""The app package asks for the resource-specific permission Teams needs before it sends read receipts."""

from __future__ import annotations

import copy

from teams_proactive.connector.app_package import (
    MANIFEST_VERSION,
    READ_RECEIPT_PERMISSION,
    AppPackageOptions,
    build_manifest,
    build_package,
    read_manifest,
    validate_manifest,
    validate_package,
)

BOT_ID = "5f1b7c2e-8a3d-4e6f-9b0a-1c2d3e4f5a6b"
OPTIONS = AppPackageOptions(
    bot_id=BOT_ID,
    version="1.0.0",
    website_url="https://notify.contoso.example/",
    privacy_url="https://notify.contoso.example/privacy",
    terms_url="https://notify.contoso.example/terms",
    valid_domains=["notify.contoso.example"],
)


def test_package_declares_chat_message_read_receipt_rsc() -> None:
    package = build_package(OPTIONS)
    manifest = read_manifest(package)
    # RSC permissions in the manifest need schema 1.12 or later.
    major, minor = (int(p) for p in MANIFEST_VERSION.split("."))
    assert (major, minor) >= (1, 12)
    assert manifest["authorization"]["permissions"]["resourceSpecific"] == [
        {"name": "ChatMessageReadReceipt.Read.Chat", "type": "Application"}
    ]
    assert READ_RECEIPT_PERMISSION == "ChatMessageReadReceipt.Read.Chat"
    assert manifest["webApplicationInfo"]["id"] == BOT_ID and manifest["webApplicationInfo"]["resource"]
    assert validate_package(package) == []


def test_the_check_refuses_a_broken_rsc_declaration() -> None:
    good = build_manifest(OPTIONS)
    files = {}  # icons are checked elsewhere; only RSC problems are looked at here

    def rsc_problems(manifest: dict) -> list[str]:
        return [p for p in validate_manifest(manifest, files) if "resourceSpecific" in p or "webApplicationInfo" in p]

    assert rsc_problems(good) == []
    untyped = copy.deepcopy(good)
    untyped["authorization"]["permissions"]["resourceSpecific"][0]["type"] = "Everyone"
    assert rsc_problems(untyped) == ["authorization.permissions.resourceSpecific[0].type must be Application or Delegated"]
    without_app = copy.deepcopy(good)
    del without_app["webApplicationInfo"]
    assert rsc_problems(without_app) == [
        "resource-specific permissions need webApplicationInfo.id (the app's Entra ID, a GUID)"
    ]
    no_resource = copy.deepcopy(good)
    no_resource["webApplicationInfo"]["resource"] = ""
    assert len(rsc_problems(no_resource)) == 1
