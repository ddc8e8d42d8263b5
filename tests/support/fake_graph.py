"""A fake Microsoft Graph and a fake Entra ID token authority (aiohttp on 127.0.0.1), as Microsoft documents them.

Shapes, each from the page named where it is built:
- token authority: "Microsoft identity platform and the OAuth 2.0 client credentials flow" (the
  ``/{tenant}/oauth2/v2.0/token`` answer) and OpenID discovery (``/{tenant}/v2.0/.well-known/
  openid-configuration``), served over HTTPS because msal refuses a plain-http authority;
- ``GET /users/{id | userPrincipalName}``: "Get user";
- ``POST /users/{id}/teamwork/installedApps``: "Install app for user" (201, empty body);
  409 Conflict when the app is installed already (what Company Communicator relies on);
- ``GET /users/{id}/teamwork/installedApps?$expand=teamsApp&$filter=teamsApp/id eq '…'`` (or
  ``externalId``): "List apps installed for user", example 3;
- ``GET /users/{id}/teamwork/installedApps/{installationId}/chat``: "Get chat between user and app";
- ``GET /groups/{id}/transitiveMembers/microsoft.graph.user``: "List group transitive members",
  paged with ``@odata.nextLink`` ("Paging Microsoft Graph data in your app"), ``userType`` Guest;
- ``GET /teams/{id}/members``: "List members of team" (aadUserConversationMember, roles ["guest"]);
- errors: "Microsoft Graph error responses and resource types" (``{"error": {"code", "message",
  "innerError": {"date", "request-id", "client-request-id"}}}``); 429 with ``Retry-After``:
  "Microsoft Graph throttling guidance"; 403 "App is blocked by app permission policy" with
  innerError AccessDenied: the error Company Communicator users report
  (OfficeDev/microsoft-teams-apps-company-communicator#1537). Microsoft documents no body for an
  unlicensed user; the fake answers 403 with a message naming the licence, which is what the
  product's classification keys on (and says so in docs/graph.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.support.aiohttp_server import BackgroundServer, free_port


@dataclass
class GraphUser:
    display_name: str
    upn: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    mail: str | None = None
    user_type: str = "Member"

    def doc(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.user",
            "id": self.id,
            "displayName": self.display_name,
            "userPrincipalName": self.upn,
            "mail": self.mail or self.upn,
            "userType": self.user_type,
        }


@dataclass
class Fault:
    status: int
    code: str
    message: str = ""
    retry_after: float | None = None
    inner_code: str | None = None
    hang: bool = False  # answer only after release_hung() (the caller times out, or dies, first)


@dataclass
class Call:
    method: str
    path: str
    tenant: str | None
    at: float = field(default_factory=time.monotonic)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), for the HTTPS token authority."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "authority.pem", directory / "authority.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class FakeGraph:
    """``with FakeGraph(tmp_path) as graph:``; ``graph.env()`` gives the settings that point the app at it."""

    APP_ID = "a6b63365-31a4-4f43-92ec-710b71557af9"  # the app's id in the fake org catalog
    EXTERNAL_ID = "cf1ba4c7-f94e-4d80-ba90-5594b641a8ee"  # the manifest id
    CLIENT_ID = "11111111-2222-3333-4444-555555555555"
    CLIENT_SECRET = "fake-graph-secret"

    def __init__(self, directory: Path, *, page_size: int = 2) -> None:
        self.graph_port = free_port()
        self.login_port = free_port()
        self.page_size = page_size
        self.cert_path, self._key_path = _self_signed(directory)
        self.users: dict[str, dict[str, GraphUser]] = {}  # tenant -> id -> user
        self.catalog = {self.APP_ID}
        self.installations: dict[tuple[str, str], str] = {}  # (tenant, user id) -> installation id
        self.groups: dict[str, list[str]] = {}  # group id -> member ids (users or groups)
        self.teams: dict[str, list[tuple[str, list[str]]]] = {}  # team id -> (user id, roles)
        self.blocked_by_policy: set[str] = set()
        self.unlicensed: set[str] = set()
        self.calls: list[Call] = []
        self.token_requests: list[dict[str, str]] = []
        self.trusted_certificate: bytes | None = None  # PEM of the app's certificate, when it uses one
        # App Service's managed identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER), for this tenant.
        self.identity_header = "fake-identity-header"
        self.identity_tenant = "tenant-contoso"
        self.identity_requests: list[dict[str, str]] = []
        self._faults: list[tuple[re.Pattern[str], Fault]] = []
        self._tokens: dict[str, str] = {}  # access token -> tenant
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = BackgroundServer("fake-graph")

    # ---- set-up -----------------------------------------------------------------------------
    @property
    def graph_url(self) -> str:
        return f"http://127.0.0.1:{self.graph_port}"

    @property
    def login_url(self) -> str:
        return f"https://127.0.0.1:{self.login_port}"

    def env(self, *, install: bool = True) -> dict[str, str]:
        return {
            "GRAPH_CLIENT_ID": self.CLIENT_ID,
            "GRAPH_CLIENT_SECRET": self.CLIENT_SECRET,
            "GRAPH_URL": self.graph_url,
            "LOGIN_URL": self.login_url,
            "REQUESTS_CA_BUNDLE": str(self.cert_path),
            "TEAMS_APP_ID": self.APP_ID,
            "GRAPH_INSTALL": "true" if install else "false",
        }

    def add_user(self, tenant: str, user: GraphUser) -> GraphUser:
        self.users.setdefault(tenant, {})[user.id] = user
        return user

    def add_group(self, group_id: str, members: list[str]) -> None:
        self.groups[group_id] = list(members)

    def add_team(self, team_id: str, members: list[tuple[str, list[str]]]) -> None:
        self.teams[team_id] = list(members)

    def fail_next(self, path_pattern: str, fault: Fault, count: int = 1) -> None:
        """The next ``count`` calls whose "METHOD /path" matches get this answer."""
        with self._lock:
            for _ in range(count):
                self._faults.append((re.compile(path_pattern), fault))

    def revoke_tokens(self) -> None:
        """Every access token issued so far stops being accepted (401 InvalidAuthenticationToken)."""
        with self._lock:
            self._tokens.clear()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def release_hung(self) -> None:
        self._server.call_soon(self._released.set)

    def calls_matching(self, pattern: str) -> list[Call]:
        rx = re.compile(pattern)
        with self._lock:
            return [c for c in self.calls if rx.search(f"{c.method} {c.path}")]

    def chat_id(self, user_id: str) -> str:
        # "19:{app-side id}_{user id}@unq.gbl.spaces", the shape of "Get chat between user and app".
        return f"19:{self.APP_ID}_{user_id}@unq.gbl.spaces"

    # ---- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> FakeGraph:
        self._server.start()
        self._released = self._server.run(_new_event())
        graph = web.Application()
        graph.router.add_get("/v1.0/users/{user}", self._get_user)
        graph.router.add_post("/v1.0/users/{user}/teamwork/installedApps", self._install)
        graph.router.add_get("/v1.0/users/{user}/teamwork/installedApps", self._list_installed)
        graph.router.add_get("/v1.0/users/{user}/teamwork/installedApps/{installation}/chat", self._chat)
        graph.router.add_get("/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user", self._transitive)
        graph.router.add_get("/v1.0/teams/{team}/members", self._team_members)
        graph.router.add_get("/msi/token", self._managed_identity_token)
        login = web.Application()
        login.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid)
        login.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.cert_path, self._key_path)
        self._server.serve(graph, port=self.graph_port)
        self._server.serve(login, port=self.login_port, ssl_context=tls)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(before=self._release_all)

    async def _release_all(self) -> None:
        self._released.set()

    # ---- token authority --------------------------------------------------------------------
    async def _openid(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{self.login_url}/{tenant}"
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = dict(await request.post())
        with self._lock:
            self.token_requests.append({k: str(v) for k, v in form.items() if k != "client_secret"})
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != self.CLIENT_ID:
            return web.json_response(
                {"error": "unauthorized_client", "error_description": "AADSTS700016: Application not found."},
                status=400,
            )
        if "client_assertion" in form:
            # Certificate credentials: a JWT signed with the app's key, its certificate named by x5t.
            if self.trusted_certificate is None or not self._assertion_ok(str(form["client_assertion"]), tenant):
                return web.json_response(
                    {"error": "invalid_client", "error_description": "AADSTS700027: Client assertion failed."},
                    status=401,
                )
        elif form.get("client_secret") != self.CLIENT_SECRET:
            return web.json_response(
                {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."},
                status=401,
            )
        token = f"graph-token-{tenant}-{next(self._ids)}"
        with self._lock:
            self._tokens[token] = tenant
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        )

    def _assertion_ok(self, assertion: str, tenant: str) -> bool:
        import base64
        import hashlib

        import jwt
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        assert self.trusted_certificate is not None
        certificate = x509.load_pem_x509_certificate(self.trusted_certificate)
        header = jwt.get_unverified_header(assertion)
        der = certificate.public_bytes(serialization.Encoding.DER)
        sha256 = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
        sha1 = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
        # base64url, with or without padding (msal pads it)
        if str(header.get("x5t#S256", "")).rstrip("=") != sha256 and str(header.get("x5t", "")).rstrip("=") != sha1:
            return False
        try:
            jwt.decode(assertion, certificate.public_key(), algorithms=["RS256", "PS256"],
                       audience=f"{self.login_url}/{tenant}/oauth2/v2.0/token",
                       options={"verify_aud": False})  # fmt: skip
        except jwt.PyJWTError:
            return False
        return True

    async def _managed_identity_token(self, request: web.Request) -> web.Response:
        """The App Service managed identity endpoint ("How to use managed identities for App Service":
        GET {IDENTITY_ENDPOINT}?resource=…&api-version=2019-08-01 with X-IDENTITY-HEADER)."""
        with self._lock:
            self.identity_requests.append(dict(request.query))
        if request.headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return web.json_response({"statusCode": 400, "message": "Invalid identity header"}, status=400)
        token = f"graph-token-msi-{next(self._ids)}"
        with self._lock:
            self._tokens[token] = self.identity_tenant
        return web.json_response({
            "access_token": token, "expires_on": str(int(time.time()) + 3600),
            "resource": request.query.get("resource", ""), "token_type": "Bearer",
            "client_id": request.query.get("client_id", ""),
        })  # fmt: skip

    # ---- Graph ------------------------------------------------------------------------------
    def _error(self, status: int, code: str, message: str, **kwargs: Any) -> web.Response:
        inner: dict[str, Any] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": str(uuid.uuid4()),
            "client-request-id": str(uuid.uuid4()),
        }
        if kwargs.get("inner_code"):
            inner["code"] = kwargs["inner_code"]
        headers = {}
        if kwargs.get("retry_after") is not None:
            headers["Retry-After"] = str(kwargs["retry_after"])
        return web.json_response(
            {"error": {"code": code, "message": message, "innerError": inner}}, status=status, headers=headers
        )

    def _enter(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        """Authenticate, log, and answer a scripted fault if one matches; returns (tenant, fault)."""
        auth = request.headers.get("Authorization", "")
        tenant = self._tokens.get(auth.removeprefix("Bearer "))
        line = f"{request.method} {request.path_qs}"
        with self._lock:
            self.calls.append(Call(request.method, request.path_qs, tenant))
            fault = None
            for index, (rx, candidate) in enumerate(self._faults):
                if rx.search(line):
                    fault = candidate
                    del self._faults[index]
                    break
        if tenant is None:
            return None, self._error(401, "InvalidAuthenticationToken", "Access token validation failure.")
        if fault is not None:
            return tenant, self._error(
                fault.status, fault.code, fault.message, retry_after=fault.retry_after, inner_code=fault.inner_code
            ) if not fault.hang else web.Response(status=599, text="hang")
        return tenant, None

    async def _enter_async(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        tenant, fault = self._enter(request)
        if fault is not None and fault.status == 599:
            await self._released.wait()
            return tenant, self._error(503, "ServiceUnavailable", "The service is unavailable.")
        return tenant, fault

    def _user(self, tenant: str, ident: str) -> GraphUser | None:
        ident = ident.lower()
        for user in self.users.get(tenant, {}).values():
            if ident in (user.id.lower(), user.upn.lower()):
                return user
        return None

    def _no_user(self, ident: str) -> web.Response:
        # "Get user": 404 Request_ResourceNotFound.
        return self._error(404, "Request_ResourceNotFound", f"Resource '{ident}' does not exist or one of its queried"
                           " reference-property objects are not present.")  # fmt: skip

    async def _get_user(self, request: web.Request) -> web.Response:
        tenant, fault = await self._enter_async(request)
        if fault is not None:
            return fault
        assert tenant is not None
        user = self._user(tenant, request.match_info["user"])
        if user is None:
            return self._no_user(request.match_info["user"])
        return web.json_response({"@odata.context": f"{self.graph_url}/v1.0/$metadata#users/$entity", **user.doc()})

    async def _install(self, request: web.Request) -> web.Response:
        tenant, fault = await self._enter_async(request)
        if fault is not None:
            return fault
        assert tenant is not None
        user = self._user(tenant, request.match_info["user"])
        if user is None:
            return self._no_user(request.match_info["user"])
        body = await request.json()
        app_id = str(body.get("teamsApp@odata.bind", "")).rsplit("/", 1)[-1]
        if app_id not in self.catalog:
            return self._error(
                404, "NotFound", f"The definition for app {app_id} was not found in the org-wide catalog."
            )
        if user.id in self.blocked_by_policy:
            return self._error(
                403,
                "Forbidden",
                f"App is blocked by app permission policy. TenantId: {tenant}, UserObjectId: {user.id}, AppId: {app_id},"
                " AppType: Private",
                inner_code="AccessDenied",
            )
        if user.id in self.unlicensed:
            return self._error(403, "Forbidden", "The user does not have a valid Microsoft Teams license.")
        with self._lock:
            if (tenant, user.id) in self.installations:
                return self._error(409, "Conflict", "App is already installed for the user.")
            self.installations[(tenant, user.id)] = f"{user.id}##{app_id}"
        return web.Response(status=201)

    async def _list_installed(self, request: web.Request) -> web.Response:
        tenant, fault = await self._enter_async(request)
        if fault is not None:
            return fault
        assert tenant is not None
        user = self._user(tenant, request.match_info["user"])
        if user is None:
            return self._no_user(request.match_info["user"])
        installation = self.installations.get((tenant, user.id))
        match = re.fullmatch(r"teamsApp/(id|externalId) eq '([^']*)'", request.query.get("$filter", ""))
        items = []
        if installation is not None:
            app = {"id": self.APP_ID, "externalId": self.EXTERNAL_ID, "displayName": "Notifications",
                   "distributionMethod": "organization"}  # fmt: skip
            if match is None or app[match.group(1)] == match.group(2):
                item: dict[str, Any] = {"id": installation}
                if "teamsApp" in request.query.get("$expand", ""):
                    item["teamsApp"] = app
                items.append(item)
        return web.json_response({"@odata.count": len(items), "value": items})

    async def _chat(self, request: web.Request) -> web.Response:
        tenant, fault = await self._enter_async(request)
        if fault is not None:
            return fault
        assert tenant is not None
        user = self._user(tenant, request.match_info["user"])
        if user is None or self.installations.get((tenant, user.id)) != request.match_info["installation"]:
            return self._error(404, "NotFound", "The installation was not found.")
        return web.json_response(
            {"@odata.context": f"{self.graph_url}/v1.0/$metadata#chats/$entity", "id": self.chat_id(user.id)}
        )

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        skip = int(request.query.get("$skiptoken", "0"))
        size = min(self.page_size, int(request.query.get("$top", "999")))
        body: dict[str, Any] = {"value": items[skip : skip + size]}
        if skip + size < len(items):
            query = "&".join(f"{k}={quote(v)}" for k, v in request.query.items() if k != "$skiptoken")
            body["@odata.nextLink"] = f"{self.graph_url}{request.path}?{query}&$skiptoken={skip + size}"
        return web.json_response(body)

    async def _transitive(self, request: web.Request) -> web.Response:
        tenant, fault = await self._enter_async(request)
        if fault is not None:
            return fault
        assert tenant is not None
        group = request.match_info["group"]
        if group not in self.groups:
            return self._error(404, "Request_ResourceNotFound", f"Resource '{group}' does not exist.")
        users: list[dict[str, Any]] = []
        seen: set[str] = set()
        pending, visited = [group], set()
        while pending:  # transitive: nested groups' users too, each once (Graph de-duplicates)
            current = pending.pop()
            if current in visited:
                continue
            visited.add(current)
            for member in self.groups.get(current, []):
                if member in self.groups:
                    pending.append(member)
                elif member not in seen and member in self.users.get(tenant, {}):
                    seen.add(member)
                    users.append(self.users[tenant][member].doc())
        return self._page(request, users)

    async def _team_members(self, request: web.Request) -> web.Response:
        tenant, fault = await self._enter_async(request)
        if fault is not None:
            return fault
        assert tenant is not None
        team = request.match_info["team"]
        if team not in self.teams:
            return self._error(404, "NotFound", f"No team found with Group Id {team}")
        members = []
        for user_id, roles in self.teams[team]:
            # A member from another organisation (shared channel, B2B direct connect) carries their own tenantId.
            home = tenant if user_id in self.users.get(tenant, {}) else next(
                t for t, people in self.users.items() if user_id in people
            )
            user = self.users[home][user_id]
            members.append({
                "@odata.type": "#microsoft.graph.aadUserConversationMember",
                "id": f"MCMjMiMjMTJiNjEx{user_id}",
                "roles": roles,
                "displayName": user.display_name,
                "userId": user_id,
                "email": user.mail or user.upn,
                "tenantId": home,
            })  # fmt: skip
        return self._page(request, members)


async def _new_event() -> asyncio.Event:
    """Made on the server's loop (an Event belongs to the loop it is first awaited on)."""
    return asyncio.Event()
