"""``export-connector``, ``export-solution`` and ``app-package``: the files an administrator uploads."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from teams_proactive.connector.cli.common import Subcommands, settings


def cmd_export_connector(args: argparse.Namespace) -> int:
    from teams_proactive.connector.export import (
        ENTRA_CLIENT_ID_PLACEHOLDER,
        ENTRA_RESOURCE_PLACEHOLDER,
        export_connector,
    )

    host = (args.host or "").strip()
    if host and ("://" in host or "/" in host):
        # Power Platform wants a bare host name ("notify.contoso.com"), the scheme goes in "schemes".
        print("error: --host takes a bare host name such as notify.contoso.com (no https://, no path)", file=sys.stderr)
        return 2
    written = export_connector(
        Path(args.out),
        host=host or None,
        entra_client_id=args.entra_client_id or ENTRA_CLIENT_ID_PLACEHOLDER,
        entra_resource=args.entra_resource or ENTRA_RESOURCE_PLACEHOLDER,
        mcp=args.mcp,
    )
    for path in written:
        print(path)
    return 0


def cmd_export_solution(args: argparse.Namespace) -> int:
    from teams_proactive.connector.export import ENTRA_CLIENT_ID_PLACEHOLDER, ENTRA_RESOURCE_PLACEHOLDER
    from teams_proactive.connector.solution import SolutionError, export_solution

    host = (args.host or "").strip()
    if host and ("://" in host or "/" in host):
        print("error: --host takes a bare host name such as notify.contoso.com (no https://, no path)", file=sys.stderr)
        return 2
    if args.out.lower().endswith(".zip"):
        print(
            "error: --out is a folder: export-solution writes two zips (the connector, then the samples)",
            file=sys.stderr,
        )
        return 2
    if args.auth != "entra" and (args.entra_client_id or args.entra_resource):
        print("error: --entra-client-id and --entra-resource go with --auth entra", file=sys.stderr)
        return 2
    try:
        written = export_solution(
            Path(args.out),
            host or None,
            auth=args.auth,
            entra_client_id=args.entra_client_id or ENTRA_CLIENT_ID_PLACEHOLDER,
            entra_resource=args.entra_resource or ENTRA_RESOURCE_PLACEHOLDER,
        )
    except SolutionError as exc:
        print(f"error: {exc} Nothing was written.", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    if args.auth == "entra" and not args.entra_client_id:
        print(
            "note: the connector has a placeholder client ID; give --entra-client-id and --entra-resource",
            file=sys.stderr,
        )
    return 0


def cmd_app_package(args: argparse.Namespace) -> int:
    from teams_proactive.connector.app_package import (
        AppPackageError,
        AppPackageOptions,
        build_package,
        domain_of,
        next_version,
        validate_package,
    )

    configured = settings()
    bot_id = args.bot_id or configured.app_id
    if not bot_id:
        print(
            "error: the app package needs the bot's Microsoft App ID: set MicrosoftAppId (from the Azure Bot"
            " resource) or pass --bot-id",
            file=sys.stderr,
        )
        return 2
    public = os.environ.get("PUBLIC_BASE_URL", "").strip().rstrip("/")
    website = args.website_url or (public if public.startswith("https://") else "")
    if not website:
        print(
            "error: Teams wants an https website for the app: set PUBLIC_BASE_URL=https://your-host or pass"
            " --website-url",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out)
    try:
        domains = list(dict.fromkeys(args.domain or ([domain_of(public)] if public else [])))
        options = AppPackageOptions(
            bot_id=bot_id,
            app_id=args.app_id,
            version=next_version(out, args.version),
            name=args.name or configured.bot_name,
            developer_name=args.developer_name,
            website_url=website,
            privacy_url=args.privacy_url or website,
            terms_url=args.terms_url or website,
            valid_domains=domains,
            color_icon=Path(args.color_icon).read_bytes() if args.color_icon else None,
            outline_icon=Path(args.outline_icon).read_bytes() if args.outline_icon else None,
        )
    except (AppPackageError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    package = build_package(options)
    problems = validate_package(package)
    if problems:
        print("error: the package would be refused by Teams:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(package)
    print(f"{out} (version {options.version}, bot {bot_id}, domains: {', '.join(domains) or 'none'})")
    print(
        "Upload it in Teams (Apps > Manage your apps > Upload an app) or in the Teams admin center."
        " Run this command again for an update: the version goes up by one.",
        file=sys.stderr,
    )
    return 0


def add_export_connector(sub: Subcommands) -> None:
    """export-connector: the custom connector files."""
    export = sub.add_parser("export-connector", help="write the custom connector files")
    export.add_argument("--out", default="openapi/")
    export.add_argument(
        "--host", default=None, help="the public host name of the service (no scheme; default: a placeholder)"
    )
    export.add_argument("--entra-client-id", default=None, help="Entra variant: the connector's app (client) ID")
    export.add_argument("--entra-resource", default=None, help="Entra variant: the API's app ID URI (ENTRA_AUDIENCE)")
    export.add_argument(
        "--mcp", action="store_true", help="write the MCP connector variant for Copilot Studio (into OUT/mcp/)"
    )
    export.set_defaults(func=cmd_export_connector)


def add_export_solution(sub: Subcommands) -> None:
    """export-solution: the two Power Platform solutions."""
    solution = sub.add_parser(
        "export-solution",
        help="write two importable Power Platform solutions: the connector, then the sample flows that use it",
    )
    solution.add_argument("--out", required=True, help="the folder to write both zips into")
    solution.add_argument(
        "--host", default=None, help="the public host name of the service (no scheme; each connection can set it)"
    )
    solution.add_argument("--auth", choices=("apikey", "entra"), default="apikey", help="how connections sign in")
    solution.add_argument("--entra-client-id", default=None, help="--auth entra: the connector's app (client) ID")
    solution.add_argument("--entra-resource", default=None, help="--auth entra: the API's app ID URI (ENTRA_AUDIENCE)")
    solution.set_defaults(func=cmd_export_solution)


def add_app_package(sub: Subcommands) -> None:
    """app-package: the Teams app package."""
    package = sub.add_parser("app-package", help="write the Teams app package (manifest + icons) for the bot")
    package.add_argument("--out", default="app.zip", help="the zip to write (default app.zip)")
    package.add_argument(
        "--version", help="app version MAJOR.MINOR.PATCH (default: one above the package already at --out, else 1.0.0)"
    )
    package.add_argument("--bot-id", help="the bot's Microsoft App ID (default MicrosoftAppId)")
    package.add_argument("--app-id", help="the Teams app ID (default: the bot's ID)")
    package.add_argument("--name", help="the app's short name, up to 30 characters (default BOT_NAME)")
    package.add_argument("--developer-name", default="Your organisation", help="shown on the app's details page")
    package.add_argument("--website-url", help="https URL (default PUBLIC_BASE_URL)")
    package.add_argument("--privacy-url", help="https URL (default: the website URL)")
    package.add_argument("--terms-url", help="https URL (default: the website URL)")
    package.add_argument(
        "--domain", action="append", help="a valid domain (repeatable; default: the host of PUBLIC_BASE_URL)"
    )
    package.add_argument("--color-icon", help="your own 192x192 PNG instead of the drawn one")
    package.add_argument("--outline-icon", help="your own 32x32 white-on-transparent PNG")
    package.set_defaults(func=cmd_app_package)
