"""A real OpenID Connect provider on loopback (oidc-provider-mock) standing in for Google."""

from __future__ import annotations

import warnings
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import authlib.deprecate  # noqa: F401 (installs its "always" filter before ours below)
import requests

from tests.support.processes import free_port

with warnings.catch_warnings():  # the mock still imports authlib.jose, deprecated upstream
    warnings.simplefilter("ignore")
    from oidc_provider_mock import run_server_in_thread


class OidcProvider:
    """Start with OidcProvider(), register people with set_user(), stop with stop().

    The provider accepts any client id and secret and requires a nonce, like Google. A person
    "signs in" by posting their `sub` to the authorization URL the app redirected to.
    """

    def __init__(self) -> None:
        self._stack = ExitStack()
        port = free_port()
        self.server = self._stack.enter_context(run_server_in_thread(port, require_nonce=True))
        # The provider names itself after the Host it is asked on; use one name throughout.
        self.issuer = f"http://localhost:{self.server.server_port}"

    @property
    def discovery_url(self) -> str:
        """Where the app reads the provider's endpoints from."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def set_user(
        self, sub: str, email: str, name: str = "Ada Google", verified: bool = True
    ) -> None:
        """Register (or replace) the claims Google would give for `sub`."""
        claims: dict[str, Any] = {"email": email, "email_verified": verified, "name": name}
        response = requests.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10)
        response.raise_for_status()

    def authorize(self, authorization_url: str, sub: str) -> str:
        """Sign in as `sub` at the provider; returns the app's callback path with code and state."""
        assert authorization_url.startswith(self.issuer), authorization_url
        response = requests.post(
            authorization_url, data={"sub": sub}, allow_redirects=False, timeout=10
        )
        assert response.status_code == 302, response.text[:500]
        callback = urlsplit(response.headers["Location"])
        return f"{callback.path}?{callback.query}"

    def stop(self) -> None:
        """Stop the server thread."""
        self._stack.close()
