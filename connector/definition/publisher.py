"""The definition's host, sign-in and publisher details: what certification asks of the file's top level."""

from __future__ import annotations

from typing import Any

# Entra ID (Azure AD) sign-in as Power Platform writes it for the "Azure Active Directory" identity provider.
ENTRA_SECURITY = {
    "type": "oauth2",
    "flow": "accessCode",
    "authorizationUrl": "https://login.microsoftonline.com/common/oauth2/authorize",
    "tokenUrl": "https://login.windows.net/common/oauth2/authorize",
    "scopes": {},
}


def use_entra_sign_in(spec: dict[str, Any]) -> None:
    """Microsoft Entra ID OAuth in place of the X-API-Key header."""
    spec["securityDefinitions"] = {"oauth2_auth": ENTRA_SECURITY}
    spec["security"] = [{"oauth2_auth": []}]


def add_publisher(spec: dict[str, Any], scheme: str, *, publisher: str, categories: str, privacy_path: str) -> None:
    """Certification asks for a contact and for Website, Privacy policy and Categories metadata."""
    website = f"{scheme}://{spec['host']}/"
    spec["info"]["contact"] = {
        "name": publisher,
        "url": website,
        "email": f"support@{spec['host'].split(':')[0]}",
    }
    spec["x-ms-connector-metadata"] = [
        {"propertyName": "Website", "propertyValue": website},
        {"propertyName": "Privacy policy", "propertyValue": f"{scheme}://{spec['host']}{privacy_path}"},
        {"propertyName": "Categories", "propertyValue": categories},
    ]
