"""A local, offline token issuer for tests of inbound bot auth and Entra connector auth.

``LocalTokenIssuer`` generates RSA keys, serves OpenID Connect metadata and JWKS from a
aiohttp server bound to 127.0.0.1 (tests.support.aiohttp_server), and mints RS256 JWTs shaped like the ones the
Bot Framework channel service and Entra ID (Azure AD) issue. Nothing goes to the internet.

Two token families, each with its own signing key and metadata document:

* Bot Framework channel -> bot (what Teams sends to ``/api/messages``):
  ``iss = https://api.botframework.com``, ``aud = <MicrosoftAppId>``, ``serviceurl`` claim.
  Metadata: :attr:`LocalTokenIssuer.bot_framework_metadata_url`
  (``/v1/.well-known/openidconfiguration``, the same path as login.botframework.com).
  Its JWKS keys carry ``endorsements`` (channel ids); botframework-connector refuses a
  token whose key does not endorse the activity's ``channelId``.
* Entra ID access tokens (connector-auth mode ``CONNECTOR_AUTH=entra``):
  v2 ``iss = https://login.microsoftonline.com/{tid}/v2.0`` (or v1 ``https://sts.windows.net/{tid}/``),
  with ``tid``, ``oid``, ``azp``/``appid``, ``roles`` and/or ``scp``.
  Metadata: :meth:`LocalTokenIssuer.entra_metadata_url` (``/{tid}/v2.0/.well-known/openid-configuration``).

It is also an Entra ID token *authority* (``LOGIN_URL``): ``POST /{tenant}/oauth2/v2.0/token`` answers the
client-credentials grant (a secret or a certificate assertion) of the app registrations made with
:meth:`LocalTokenIssuer.register_app`, and ``GET /msi/token`` is App Service's managed identity endpoint
(``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``). The access tokens it issues are RS256 JWTs signed by the
Entra key; :meth:`LocalTokenIssuer.accepts_bot_connector_token` is the check the fake Bot Connector makes.
With ``tls=True`` everything is served over HTTPS with a certificate of the test run's own CA
(``tests/support/local_ca.py``); msal refuses a plain-http authority and the service refuses http
sign-in and key URLs.

The Bot Framework SDK fetches metadata with blocking ``requests.get`` from inside its
coroutines, so the server runs in its own thread (never on the test's event loop).
The SDK also caches keys per metadata URL for a day, process-wide
(``JwtTokenExtractor.metadataCache``); every issuer binds a fresh port, so its URLs are unique.

Usage::

    with LocalTokenIssuer() as issuer:
        ChannelValidation.open_id_metadata_endpoint = issuer.bot_framework_metadata_url
        header = issuer.bot_framework_auth_header(app_id=APP_ID, service_url=SERVICE_URL)
        ...

See ``tests/support/AUTH_NOTES.md`` for how the SDK validates these tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.aiohttp_server import BackgroundServer
from tests.support.local_ca import local_ca

__all__ = [
    "BOT_CONNECTOR_AUDIENCE",
    "BOT_FRAMEWORK_ISSUER",
    "DEFAULT_ENDORSEMENTS",
    "AppRegistration",
    "LocalTokenIssuer",
    "SigningKey",
    "entra_v1_issuer",
    "entra_v2_issuer",
]

#: ``iss`` of channel -> bot tokens (AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER).
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"

#: Channel ids endorsed by the Bot Framework signing key served by default.
DEFAULT_ENDORSEMENTS: tuple[str, ...] = ("msteams", "webchat", "emulator", "directline")


def entra_v2_issuer(tenant_id: str) -> str:
    """The ``iss`` of an Entra ID v2.0 access token for ``tenant_id``."""
    return f"https://login.microsoftonline.com/{tenant_id}/v2.0"


def entra_v1_issuer(tenant_id: str) -> str:
    """The ``iss`` of an Entra ID v1.0 access token for ``tenant_id``."""
    return f"https://sts.windows.net/{tenant_id}/"


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass
class SigningKey:
    """An RSA key pair with a key id; ``jwk`` is the public half as served in JWKS."""

    kid: str
    private_key: rsa.RSAPrivateKey
    endorsements: list[str] | None = None
    extra_jwk_fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def generate(cls, kid: str | None = None, endorsements: Iterable[str] | None = None) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(
            kid=kid or uuid.uuid4().hex,
            private_key=key,
            endorsements=list(endorsements) if endorsements is not None else None,
        )

    @property
    def jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        out: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }
        if self.endorsements is not None:
            out["endorsements"] = list(self.endorsements)
        out.update(self.extra_jwk_fields)
        return out

    def sign(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        """RS256-sign ``claims`` with ``kid`` (default: this key's own kid) in the header."""
        return jwt.encode(
            dict(claims),
            self.private_key,
            algorithm="RS256",
            headers={"kid": kid or self.kid, "typ": "JWT"},
        )


def _first_values(encoded: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(encoded).items()}


def _json(status: int, body: Any, *, charset: str | None = None) -> web.Response:
    payload = json.dumps(body).encode("utf-8")
    return web.Response(status=status, body=payload, content_type="application/json", charset=charset)


def _routes(issuer: LocalTokenIssuer) -> web.Application:
    """The authority's endpoints: documents and keys (GET), the managed identity endpoint, tokens (POST)."""

    async def get(request: web.Request) -> web.Response:
        path = request.path
        issuer._record(path)
        if path == "/msi/token":
            status, answer = issuer._managed_identity(
                _first_values(request.query_string), request.headers.get("X-IDENTITY-HEADER")
            )
            return _json(status, answer)
        document = issuer._document_for(path)
        return _json(404, {"error": "not_found"}) if document is None else _json(200, document)

    async def post(request: web.Request) -> web.Response:
        path = request.path
        issuer._record("POST " + path)
        form = _first_values((await request.read()).decode("utf-8"))
        match = _TOKEN_PATH.match(path)
        if match is None:
            status, answer = 404, {"error": "not_found"}
        else:
            status, answer = issuer._token_answer(match.group(1), form)
        return _json(status, answer, charset="utf-8")

    app = web.Application()
    app.router.add_get("/{path:.*}", get)
    app.router.add_post("/{path:.*}", post)
    return app


_ENTRA_V2_META = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")
_ENTRA_V1_META = re.compile(r"^/([^/]+)/\.well-known/openid-configuration$")
_ENTRA_KEYS = re.compile(r"^/([^/]+)/discovery(?:/v2\.0)?/keys$")
_MULTI_TENANT_ALIASES = {"common", "organizations", "consumers"}
_TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")

#: The audience of the bot's own tokens for the Bot Connector (what ``…/.default`` is asked for).
BOT_CONNECTOR_AUDIENCE = "https://api.botframework.com"


@dataclass
class AppRegistration:
    """An app the authority issues tokens to: a client secret, a certificate, or a managed identity."""

    client_id: str
    tenant_id: str
    secret: str | None = None
    certificate_pem: bytes | None = None
    managed_identity: bool = False


class LocalTokenIssuer:
    """Local OpenID provider + token minter for Bot Framework and Entra ID tokens.

    Start it with :meth:`start` or as a context manager; stop with :meth:`stop`.
    All URLs are plain ``http://127.0.0.1:<port>``; ``requests``, ``urllib`` and
    PyJWT's ``PyJWKClient`` accept them.
    """

    def __init__(
        self,
        *,
        endorsements: Iterable[str] = DEFAULT_ENDORSEMENTS,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        token_lifetime: int = 3600,
    ) -> None:
        self.host = host
        self._port = port
        self.tls = tls
        #: ``expires_in`` of the access tokens the authority issues.
        self.token_lifetime = token_lifetime
        #: App Service's X-IDENTITY-HEADER secret for ``/msi/token``.
        self.identity_header = uuid.uuid4().hex
        self.apps: dict[str, AppRegistration] = {}
        #: Every token request answered: (tenant or "msi", form without secrets, status).
        self.token_requests: list[tuple[str, dict[str, str], int]] = []
        self._revoked: set[str] = set()
        self._issued: list[str] = []
        #: Key that signs Bot Framework channel tokens (served with ``endorsements``).
        self.bot_framework_key = SigningKey.generate(endorsements=endorsements)
        #: Key that signs Entra ID tokens (served without endorsements, like Entra).
        self.entra_key = SigningKey.generate()
        #: A key that is never served: tokens signed by it fail signature checks.
        self.other_key = SigningKey.generate()
        self._server: BackgroundServer | None = None
        self._bound_port = 0
        self._lock = threading.Lock()
        self._requests: list[str] = []

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> LocalTokenIssuer:
        """Serve on 127.0.0.1 (a free port unless one was given) from a thread of its own. Idempotent."""
        if self._server is None:
            server = BackgroundServer("LocalTokenIssuer").start()
            context = local_ca().server_context("issuer") if self.tls else None
            self._bound_port = server.serve(_routes(self), port=self._port or None, ssl_context=context)
            self._server = server
        return self

    def stop(self) -> None:
        """Shut the server down and close its socket. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> LocalTokenIssuer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- URLs ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalTokenIssuer is not started")
        return self._bound_port

    @property
    def base_url(self) -> str:
        """``http(s)://127.0.0.1:<port>`` (no trailing slash)."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def identity_endpoint(self) -> str:
        """App Service's IDENTITY_ENDPOINT (served over the same scheme as the rest)."""
        return f"{self.base_url}/msi/token"

    @property
    def bot_framework_metadata_url(self) -> str:
        """OpenID metadata for channel -> bot tokens; replaces
        ``https://login.botframework.com/v1/.well-known/openidconfiguration``."""
        return f"{self.base_url}/v1/.well-known/openidconfiguration"

    @property
    def metadata_url(self) -> str:
        """Alias of :attr:`bot_framework_metadata_url`."""
        return self.bot_framework_metadata_url

    @property
    def bot_framework_jwks_url(self) -> str:
        return f"{self.base_url}/v1/.well-known/keys"

    def entra_metadata_url(self, tenant_id: str = "common", version: str = "2.0") -> str:
        """Entra OpenID metadata URL for ``tenant_id`` (or ``common``/``organizations``).

        ``version="2.0"``: ``/{tid}/v2.0/.well-known/openid-configuration``;
        ``version="1.0"``: ``/{tid}/.well-known/openid-configuration``.
        """
        if version == "1.0":
            return f"{self.base_url}/{tenant_id}/.well-known/openid-configuration"
        return f"{self.base_url}/{tenant_id}/v2.0/.well-known/openid-configuration"

    def entra_jwks_url(self, tenant_id: str = "common") -> str:
        return f"{self.base_url}/{tenant_id}/discovery/v2.0/keys"

    @property
    def entra_authority(self) -> str:
        """What replaces ``https://login.microsoftonline.com`` (append ``/{tid}/v2.0``)."""
        return self.base_url

    # ---- served documents ------------------------------------------------------------

    def bot_framework_openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": BOT_FRAMEWORK_ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": self.bot_framework_jwks_url,
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def bot_framework_jwks(self) -> dict[str, Any]:
        return {"keys": [self.bot_framework_key.jwk]}

    def entra_openid_configuration(self, tenant_id: str, version: str = "2.0") -> dict[str, Any]:
        placeholder = "{tenantid}"
        tid = placeholder if tenant_id in _MULTI_TENANT_ALIASES else tenant_id
        issuer = entra_v1_issuer(tid) if version == "1.0" else entra_v2_issuer(tid)
        return {
            "issuer": issuer,
            "jwks_uri": self.entra_jwks_url(tenant_id),
            "token_endpoint": f"{self.base_url}/{tenant_id}/oauth2/v2.0/token",
            "authorization_endpoint": f"{self.base_url}/{tenant_id}/oauth2/v2.0/authorize",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "tenant_region_scope": "EU",
        }

    def entra_jwks(self) -> dict[str, Any]:
        return {"keys": [self.entra_key.jwk]}

    def _document_for(self, path: str) -> dict[str, Any] | None:
        if path == "/v1/.well-known/openidconfiguration":
            return self.bot_framework_openid_configuration()
        if path == "/v1/.well-known/keys":
            return self.bot_framework_jwks()
        if m := _ENTRA_V2_META.match(path):
            return self.entra_openid_configuration(m.group(1), "2.0")
        if m := _ENTRA_V1_META.match(path):
            return self.entra_openid_configuration(m.group(1), "1.0")
        if _ENTRA_KEYS.match(path):
            return self.entra_jwks()
        return None

    def _record(self, path: str) -> None:
        with self._lock:
            self._requests.append(path)

    @property
    def requests(self) -> list[str]:
        """Paths fetched from the server so far (to assert on metadata/key fetches)."""
        with self._lock:
            return list(self._requests)

    # ---- key management --------------------------------------------------------------

    def rotate_bot_framework_key(self, endorsements: Iterable[str] | None = None) -> SigningKey:
        """Replace the served Bot Framework key (new kid). Note: the SDK caches keys per
        metadata URL and re-fetches for an unknown kid at most once an hour, so a rotated
        key is NOT picked up by a process that already fetched this issuer's keys."""
        old = self.bot_framework_key.endorsements
        self.bot_framework_key = SigningKey.generate(endorsements=endorsements if endorsements is not None else old)
        return self.bot_framework_key

    # ---- tokens ----------------------------------------------------------------------

    def bot_framework_token(
        self,
        app_id: str,
        service_url: str | None,
        *,
        expires_in: int = 3600,
        issuer: str = BOT_FRAMEWORK_ISSUER,
        audience: str | Sequence[str] | None = None,
        sign_with_other_key: bool = False,
        not_before: int | None = None,
        kid: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A channel -> bot token as the Bot Connector service sends it.

        :param app_id: the bot's MicrosoftAppId; the default ``aud``.
        :param service_url: the ``serviceurl`` claim (must equal the activity's
            ``serviceUrl``); ``None`` omits the claim.
        :param expires_in: seconds until ``exp`` (negative = already expired; the SDK
            allows 300 s of clock skew, so use e.g. ``-600`` for an expired token).
        :param issuer: ``iss`` (default ``https://api.botframework.com``).
        :param audience: ``aud`` override (default ``app_id``).
        :param sign_with_other_key: sign with a key that is not served, keeping the
            served key's ``kid`` in the header, so only the signature check fails.
        :param not_before: ``nbf`` (default: now - 5 s).
        :param kid: ``kid`` header override (an unknown kid makes the SDK raise IndexError).
        :param extra_claims: merged last; a value of ``None`` removes a claim.

        Deliberately no ``ver``/``appid``/``azp`` claims: with ``ver`` and an app id
        different from ``aud`` the SDK would treat the token as a *skill* token.
        """
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience if audience is not None else app_id,
            "nbf": not_before if not_before is not None else now - 5,
            "exp": now + expires_in,
        }
        if service_url is not None:
            claims["serviceurl"] = service_url
        claims = _merge(claims, extra_claims)
        key = self.other_key if sign_with_other_key else self.bot_framework_key
        return key.sign(claims, kid=kid or self.bot_framework_key.kid)

    def bot_framework_auth_header(self, app_id: str, service_url: str | None, **kwargs: Any) -> str:
        """``"Bearer " + bot_framework_token(...)``."""
        return "Bearer " + self.bot_framework_token(app_id, service_url, **kwargs)

    def entra_token(
        self,
        audience: str | Sequence[str],
        tenant_id: str,
        *,
        roles: Sequence[str] | None = None,
        scp: str | Sequence[str] | None = None,
        issuer: str | None = None,
        version: str = "2.0",
        client_app_id: str = "11111111-2222-3333-4444-555555555555",
        object_id: str | None = None,
        expires_in: int = 3600,
        not_before: int | None = None,
        sign_with_other_key: bool = False,
        kid: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """An Entra ID access token, as a caller of the connector API would present it.

        :param audience: ``aud`` (the API's app id URI or client id).
        :param tenant_id: ``tid``; also used in the default issuer.
        :param roles: app roles (``roles`` claim; application permissions).
        :param scp: delegated scopes; a list is joined with spaces (``scp`` claim).
        :param issuer: ``iss`` override (default ``https://login.microsoftonline.com/{tid}/v2.0``,
            or ``https://sts.windows.net/{tid}/`` for ``version="1.0"``).
        :param version: ``ver`` claim: ``"2.0"`` (``azp``) or ``"1.0"`` (``appid``).
        :param client_app_id: the calling client's app id (``azp`` / ``appid``).
        :param object_id: ``oid`` (default: random GUID); also ``sub``.
        :param expires_in: seconds until ``exp`` (negative = expired).
        :param sign_with_other_key: sign with an unserved key (same ``kid``): bad signature.
        :param extra_claims: merged last; a value of ``None`` removes a claim.
        """
        now = int(time.time())
        oid = object_id or str(uuid.uuid4())
        if issuer is None:
            issuer = entra_v1_issuer(tenant_id) if version == "1.0" else entra_v2_issuer(tenant_id)
        claims: dict[str, Any] = {
            "aud": audience if isinstance(audience, str) else list(audience),
            "iss": issuer,
            "iat": now - 5,
            "nbf": not_before if not_before is not None else now - 5,
            "exp": now + expires_in,
            "tid": tenant_id,
            "oid": oid,
            "sub": oid,
            "ver": version,
            "uti": uuid.uuid4().hex[:22],
        }
        if version == "1.0":
            claims["appid"] = client_app_id
            claims["appidacr"] = "1"
        else:
            claims["azp"] = client_app_id
            claims["azpacr"] = "1"
        if roles is not None:
            claims["roles"] = list(roles)
        if scp is not None:
            claims["scp"] = scp if isinstance(scp, str) else " ".join(scp)
        claims = _merge(claims, extra_claims)
        key = self.other_key if sign_with_other_key else self.entra_key
        return key.sign(claims, kid=kid or self.entra_key.kid)

    def entra_auth_header(self, audience: str, tenant_id: str, **kwargs: Any) -> str:
        """``"Bearer " + entra_token(...)``."""
        return "Bearer " + self.entra_token(audience, tenant_id, **kwargs)

    # ---- token authority (LOGIN_URL) ---------------------------------------------------------

    def register_app(
        self,
        client_id: str,
        tenant_id: str,
        *,
        secret: str | None = None,
        certificate_pem: bytes | None = None,
        managed_identity: bool = False,
    ) -> AppRegistration:
        """An app the authority issues tokens to (by secret, certificate assertion or managed identity)."""
        app = AppRegistration(client_id, tenant_id, secret, certificate_pem, managed_identity)
        self.apps[client_id] = app
        return app

    def revoke_issued(self) -> None:
        """Every access token issued so far stops being accepted (a rotated secret, a revoked grant)."""
        with self._lock:
            self._revoked.update(self._issued)

    def issued_for(self, audience: str) -> list[str]:
        """Access tokens issued for ``audience`` (in order)."""
        with self._lock:
            return [t for t in self._issued if jwt.decode(t, options={"verify_signature": False})["aud"] == audience]

    def _access_token(self, app: AppRegistration, audience: str) -> str:
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": entra_v1_issuer(app.tenant_id),
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + self.token_lifetime,
            "appid": app.client_id,
            "appidacr": "2" if app.certificate_pem else "1",
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, app.client_id)),
            "tid": app.tenant_id,
            "ver": "1.0",
            "uti": uuid.uuid4().hex[:22],
        }
        token = self.entra_key.sign(claims)
        with self._lock:
            self._issued.append(token)
        return token

    def _token_answer(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The client-credentials grant ("Microsoft identity platform and the OAuth 2.0 client credentials
        flow"): the access token answer, or Entra ID's error with its AADSTS code."""
        status, body = self._grant(tenant, form)
        kept = {k: v for k, v in form.items() if k not in ("client_secret", "client_assertion")}
        with self._lock:
            self.token_requests.append((tenant, kept, status))
        return status, body

    def _grant(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        app = self.apps.get(form.get("client_id", ""))
        if form.get("grant_type") != "client_credentials" or app is None or app.managed_identity:
            return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016: Application not found."}
        if tenant != app.tenant_id and tenant not in ("botframework.com", "organizations", "common"):
            return 400, {"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}
        if "client_assertion" in form:
            if app.certificate_pem is None or not self._assertion_ok(app, form["client_assertion"]):
                return 401, {"error": "invalid_client", "error_description": "AADSTS700027: Client assertion failed."}
        elif app.secret is None or form.get("client_secret") != app.secret:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
        scope = form.get("scope", "").split()
        if len(scope) != 1 or not scope[0].endswith("/.default"):
            return 400, {
                "error": "invalid_scope",
                "error_description": "AADSTS1002012: The provided value for"
                " scope is not valid. Client credential flows must have a scope value with /.default",
            }
        audience = scope[0].removesuffix("/.default")
        return 200, {"token_type": "Bearer", "expires_in": self.token_lifetime, "ext_expires_in": self.token_lifetime,
                     "access_token": self._access_token(app, audience)}  # fmt: skip

    def _assertion_ok(self, app: AppRegistration, assertion: str) -> bool:
        """A certificate credential: a JWT signed by the app's key, naming its certificate by thumbprint."""
        from cryptography import x509

        assert app.certificate_pem is not None
        header = jwt.get_unverified_header(assertion)
        named = {str(header.get("x5t#S256", "")).rstrip("="), str(header.get("x5t", "")).rstrip("=")}
        if not named & _thumbprints(app.certificate_pem):
            return False
        certificate = x509.load_pem_x509_certificate(app.certificate_pem)
        try:
            claims = jwt.decode(assertion, certificate.public_key(), algorithms=["RS256", "PS256"],
                                options={"verify_aud": False})  # fmt: skip
        except jwt.PyJWTError:
            return False
        return claims.get("iss") == app.client_id and claims.get("sub") == app.client_id

    def _managed_identity(self, query: dict[str, str], header: str | None) -> tuple[int, dict[str, Any]]:
        """App Service's identity endpoint ("How to use managed identities for App Service and Azure
        Functions": GET {IDENTITY_ENDPOINT}?resource=…&api-version=2019-08-01&client_id=… with the
        X-IDENTITY-HEADER header)."""
        status, body = 200, {}
        app = self.apps.get(query.get("client_id", ""))
        if header != self.identity_header:
            status, body = 400, {"statusCode": 400, "message": "Invalid identity header"}
        elif app is None or not app.managed_identity:
            status, body = 400, {"statusCode": 400, "message": "No managed identity with this client id"}
        else:
            token = self._access_token(app, query.get("resource", ""))
            body = {"access_token": token, "expires_on": str(int(time.time()) + self.token_lifetime),
                    "resource": query.get("resource", ""), "token_type": "Bearer", "client_id": app.client_id}  # fmt: skip
        with self._lock:
            self.token_requests.append(("msi", dict(query), status))
        return status, body

    def accepts_bot_connector_token(self, authorization: str | None) -> bool:
        """What the Bot Connector checks of a bot's call: a bearer token this authority signed for
        https://api.botframework.com, for a registered app, unexpired and not revoked."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization.removeprefix("Bearer ")
        with self._lock:
            if token in self._revoked:
                return False
        try:
            claims = jwt.decode(token, self.entra_key.private_key.public_key(), algorithms=["RS256"],
                                audience=BOT_CONNECTOR_AUDIENCE)  # fmt: skip
        except jwt.PyJWTError:
            return False
        return claims.get("appid") in self.apps


def _thumbprints(certificate_pem: bytes) -> set[str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(certificate_pem).public_bytes(serialization.Encoding.DER)
    return {
        base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode(),
        base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode(),
    }


def _merge(claims: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if extra:
        for name, value in extra.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
    return claims
