"""Signing in to the dashboard as a browser does: open the form (its one-time token), then post it."""

from __future__ import annotations

import re
from typing import Any

import requests

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def post_login(http: requests.Session, base_url: str, data: dict[str, str], **kwargs: Any) -> requests.Response:
    form = http.get(base_url + "/dashboard/login", timeout=30)
    match = TOKEN.search(form.text)
    assert match, "the sign-in form carries no token"
    return http.post(base_url + "/dashboard/login", data={**data, "csrf_token": match.group(1)}, timeout=30, **kwargs)
