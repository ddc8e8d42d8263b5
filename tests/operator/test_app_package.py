"""The Teams app package: a real zip, checked against the manifest rules that hold offline (schema
version, GUID ids, icon sizes read from the PNG headers, the outline icon's white-on-transparent)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from teams_proactive.connector.app_package import (
    MANIFEST_VERSION,
    AppPackageOptions,
    build_package,
    validate_package,
)
from teams_proactive.connector.cli import main
from teams_proactive.connector.icon import color_icon_png, encode_png, png_size, read_png

BOT_ID = "5f1b7c2e-8a3d-4e6f-9b0a-1c2d3e4f5a6b"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def package_env(monkeypatch: pytest.MonkeyPatch, cli_env: dict[str, str]) -> None:
    monkeypatch.setenv("MicrosoftAppId", BOT_ID)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://notify.contoso.example")
    monkeypatch.setenv("BOT_NAME", "Contoso Alerts")


def _unzip(path: Path) -> tuple[dict, dict[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(files["manifest.json"]), files


def test_app_package_is_a_valid_teams_package(
    package_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "app.zip"
    assert main(["app-package", "--out", str(out)]) == 0, capsys.readouterr().err
    manifest, files = _unzip(out)

    assert set(files) == {"manifest.json", "color.png", "outline.png"}  # all at the root, nothing else
    assert manifest["manifestVersion"] == MANIFEST_VERSION
    assert manifest["$schema"].endswith(f"/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json")
    assert manifest["version"] == "1.0.0"
    assert GUID.match(manifest["id"]) and manifest["id"] == BOT_ID
    assert manifest["name"]["short"] == "Contoso Alerts" and len(manifest["name"]["short"]) <= 30
    assert manifest["name"]["full"] != manifest["name"]["short"]
    assert len(manifest["description"]["short"]) <= 80
    assert manifest["description"]["short"] not in manifest["description"]["full"]
    assert re.match(r"^#[0-9A-F]{6}$", manifest["accentColor"])
    assert all(manifest["developer"][k].startswith("https://") for k in ("websiteUrl", "privacyUrl", "termsOfUseUrl"))

    (bot,) = manifest["bots"]
    assert bot["botId"] == BOT_ID
    assert bot["scopes"] == ["personal"]
    assert bot["supportsFiles"] is False
    assert bot["commandLists"] == [
        {
            "scopes": ["personal"],
            "commands": [
                {"title": "help", "description": bot["commandLists"][0]["commands"][0]["description"]},
                {"title": "stop", "description": bot["commandLists"][0]["commands"][1]["description"]},
                {"title": "start", "description": bot["commandLists"][0]["commands"][2]["description"]},
            ],
        }
    ]
    assert manifest["validDomains"] == ["notify.contoso.example"]

    # Icon sizes from the PNG headers, and the outline icon's pixels.
    assert png_size(files[manifest["icons"]["color"]]) == (192, 192)
    assert png_size(files[manifest["icons"]["outline"]]) == (32, 32)
    outline = read_png(files["outline.png"])
    pixels = [outline.rgba(x, y) for y in range(32) for x in range(32)]
    assert {p for p in pixels if p[3]} == {(255, 255, 255, 255)}
    assert any(p[3] == 0 for p in pixels)

    assert validate_package(out.read_bytes()) == []


def test_app_package_bumps_the_version_on_each_run(
    package_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "app.zip"
    versions = []
    for _ in range(3):
        assert main(["app-package", "--out", str(out)]) == 0
        versions.append(_unzip(out)[0]["version"])
    assert versions == ["1.0.0", "1.0.1", "1.0.2"]
    assert main(["app-package", "--out", str(out), "--version", "2.0.0"]) == 0
    assert _unzip(out)[0]["version"] == "2.0.0"
    assert main(["app-package", "--out", str(out)]) == 0
    assert _unzip(out)[0]["version"] == "2.0.1"
    capsys.readouterr()
    assert main(["app-package", "--out", str(out), "--version", "v3"]) == 2
    assert "1.2.3" in capsys.readouterr().err


def test_app_package_options_and_own_icons(package_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    color = tmp_path / "brand.png"
    color.write_bytes(encode_png(192, 192, lambda x, y: (200, 30, 30)))
    out = tmp_path / "app.zip"
    argv = ["app-package", "--out", str(out), "--name", "Ops", "--domain", "a.contoso.example"]
    argv += ["--domain", "b.contoso.example", "--privacy-url", "https://contoso.example/privacy"]
    argv += ["--color-icon", str(color), "--app-id", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"]
    assert main(argv) == 0, capsys.readouterr().err
    manifest, files = _unzip(out)
    assert manifest["name"]["short"] == "Ops"
    assert manifest["id"] == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" and manifest["bots"][0]["botId"] == BOT_ID
    assert manifest["validDomains"] == ["a.contoso.example", "b.contoso.example"]
    assert manifest["developer"]["privacyUrl"] == "https://contoso.example/privacy"
    assert files["color.png"] == color.read_bytes()

    # A wrong-size icon is refused before anything is written.
    wrong = tmp_path / "wrong.png"
    wrong.write_bytes(color_icon_png(100))
    capsys.readouterr()
    assert main(["app-package", "--out", str(tmp_path / "x.zip"), "--color-icon", str(wrong)]) == 1
    assert "100x100 pixels; Teams wants 192x192" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()


def test_app_package_explains_what_is_missing(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["app-package", "--out", str(tmp_path / "a.zip")]) == 2
    assert "MicrosoftAppId" in capsys.readouterr().err
    monkeypatch.setenv("MicrosoftAppId", BOT_ID)
    assert main(["app-package", "--out", str(tmp_path / "a.zip")]) == 2
    assert "PUBLIC_BASE_URL" in capsys.readouterr().err
    monkeypatch.setenv("MicrosoftAppId", "not-a-guid")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://notify.contoso.example")
    assert main(["app-package", "--out", str(tmp_path / "a.zip")]) == 1
    assert "botId must be the bot's Microsoft App ID (a GUID)" in capsys.readouterr().err


# ---- the checker itself catches what Teams refuses -------------------------------------------------
def _options(**changes: object) -> AppPackageOptions:
    base: dict[str, object] = {
        "bot_id": BOT_ID,
        "version": "1.0.0",
        "website_url": "https://notify.contoso.example",
        "privacy_url": "https://notify.contoso.example",
        "terms_url": "https://notify.contoso.example",
        "valid_domains": ["notify.contoso.example"],
    }
    return AppPackageOptions(**(base | changes))  # type: ignore[arg-type]


def _rezip(package: bytes, edit_manifest=None, files: dict[str, bytes] | None = None, prefix: str = "") -> bytes:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        contents = {n: archive.read(n) for n in archive.namelist()}
    if edit_manifest:
        manifest = json.loads(contents["manifest.json"])
        edit_manifest(manifest)
        contents["manifest.json"] = json.dumps(manifest).encode()
    contents |= files or {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in contents.items():
            archive.writestr(prefix + name, data)
    return buffer.getvalue()


def test_the_checker_refuses_packages_teams_would_refuse() -> None:
    good = build_package(_options())
    assert validate_package(good) == []
    assert build_package(_options()) == good  # the same inputs give the same bytes

    def problems(edit=None, files=None, prefix="") -> str:  # type: ignore[no-untyped-def]
        return "\n".join(validate_package(_rezip(good, edit, files, prefix)))

    assert "root of the zip" in problems(prefix="app/")
    assert "id must be a GUID" in problems(lambda m: m.update(id="my-app"))
    assert "manifestVersion" in problems(lambda m: m.update(manifestVersion="1.18"))
    assert "$schema" in problems(lambda m: m.update({"$schema": m["$schema"].replace("1.22", "1.16")}))
    assert "version must be" in problems(lambda m: m.update(version="1.0"))
    assert "name.short is 31 characters" in problems(lambda m: m["name"].update(short="x" * 31))
    assert "developer.privacyUrl must be an absolute https://" in problems(
        lambda m: m["developer"].update(privacyUrl="http://contoso.example")
    )
    assert "bots[0].scopes" in problems(lambda m: m["bots"][0].update(scopes=["everywhere"]))
    assert "supportsFiles must be true or false" in problems(lambda m: m["bots"][0].update(supportsFiles="no"))
    assert "validDomains entry 'https://x.example'" in problems(lambda m: m.update(validDomains=["https://x.example"]))
    assert "unknown top-level properties: extra" in problems(lambda m: m.update(extra=1))
    assert "icons.color names missing.png" in problems(lambda m: m["icons"].update(color="missing.png"))
    assert "Teams wants 32x32" in problems(files={"outline.png": color_icon_png(64)})
    assert "neither white nor transparent" in problems(
        files={"outline.png": encode_png(32, 32, lambda x, y: (255, 0, 0, 255) if x < 4 else (0, 0, 0, 0), alpha=True)}
    )
    assert "no transparency" in problems(files={"outline.png": encode_png(32, 32, lambda x, y: (255, 255, 255))})
    assert validate_package(b"not a zip") == ["the file is not a zip archive"]
