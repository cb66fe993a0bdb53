"""A `requests` session that keeps its CA file: the registry's certificate is verified against it even where
REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is set (requests lets those override a session's own `verify`)."""

from __future__ import annotations

from typing import Any

import requests


class VerifyingSession(requests.Session):
    """`verify` is `ca_file` for every request that does not pass its own."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self.verify = ca_file

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:  # requests' stubs type it with a private TypedDict
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None:  # not given for this request: the session's CA, not the environment's bundle
            settings["verify"] = self.verify
        return settings
