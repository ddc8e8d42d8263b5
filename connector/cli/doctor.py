"""``teams-proactive doctor``: check the configuration, store, credentials and public URL."""

from __future__ import annotations

import argparse
import json
import os

from dotenv import load_dotenv
from teams_proactive.connector.cli.common import Subcommands


def cmd_doctor(args: argparse.Namespace) -> int:
    from teams_proactive.connector.doctor import FAIL, diagnose, render

    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    findings = diagnose(os.environ, online=args.online)
    if args.json:
        print(json.dumps([{"level": f.level, "topic": f.topic, "text": f.text} for f in findings], indent=2))
    else:
        print("teams-proactive doctor\n" + render(findings))
    return 1 if any(f.level == FAIL for f in findings) else 0


def add_doctor(sub: Subcommands) -> None:
    """doctor: --online and --json."""
    doctor = sub.add_parser("doctor", help="check the configuration, store, credentials and public URL")
    doctor.add_argument("--online", action="store_true", help="also fetch PUBLIC_BASE_URL/healthz")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(func=cmd_doctor)
