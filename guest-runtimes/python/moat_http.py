"""Routes Python's HTTP clients through the host's policy gate.

The guest has no sockets. `urllib.request.urlopen` and `requests` keep
their usual interfaces, but their transport becomes one call to the host's
`http.fetch`, which checks the request against the egress policy, follows
redirects (checking each hop), injects secrets and returns the whole
response. A refused request raises `EgressDenied` (a `PermissionError`, and
for urllib also a `URLError`) whose message names the rule involved.
"""

import email.message
import http.client
import io
import urllib.error
import urllib.request
import urllib.response

from componentize_py_types import Err
from wit_world.imports import http as host_http


class EgressError(OSError):
    """A request the host gate did not carry out."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self):
        return self.message


class EgressDenied(EgressError, PermissionError):
    """The policy does not allow the request."""


class EgressTimeout(EgressError, TimeoutError):
    """The server did not answer in time."""


_ERROR_CLASSES = {
    host_http.ErrorKind.DENIED: EgressDenied,
    host_http.ErrorKind.TIMEOUT: EgressTimeout,
}


def fetch(method: str, url: str, headers=(), body: bytes | None = None, follow_redirects=True):
    """Send one request through the host gate and return its response."""
    request = host_http.Request(
        method=method.upper(),
        url=url,
        headers=[(str(name), str(value)) for name, value in headers],
        body=bytes(body) if body is not None else None,
        follow_redirects=follow_redirects,
    )
    try:
        return host_http.fetch(request)
    except Err as failure:
        error = failure.value
        kind = error.kind.name.lower()
        raise _ERROR_CLASSES.get(error.kind, EgressError)(kind, error.message) from None


def _message(headers) -> http.client.HTTPMessage:
    message = http.client.HTTPMessage()
    for name, value in headers:
        message[name] = value
    return message


def _read_body(data) -> bytes | None:
    if data is None:
        return None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    if hasattr(data, "read"):
        return _read_body(data.read())
    # An iterable of byte chunks, as urllib accepts.
    return b"".join(bytes(chunk) for chunk in data)


class _GateHandler(urllib.request.BaseHandler):
    """urllib handler for http and https URLs that uses the host gate."""

    handler_order = 100

    def _open(self, request: urllib.request.Request):
        headers = list(request.header_items())
        try:
            response = fetch(
                request.get_method(),
                request.full_url,
                headers,
                _read_body(request.data),
            )
        except EgressDenied as denied:
            raise _DeniedURLError(denied) from None
        except EgressError as error:
            raise urllib.error.URLError(error) from None

        result = urllib.response.addinfourl(
            io.BytesIO(bytes(response.body)),
            _message(response.headers),
            response.url,
            response.status,
        )
        result.msg = response.reason
        result.reason = response.reason
        return result

    def http_open(self, request):
        return self._open(request)

    def https_open(self, request):
        return self._open(request)


class _DeniedURLError(urllib.error.URLError, PermissionError):
    """A URLError that is also a PermissionError, for a refused request."""

    def __init__(self, denied: EgressDenied):
        urllib.error.URLError.__init__(self, denied.message)
        self.kind = denied.kind

    def __str__(self):
        return f"<urlopen error {self.reason}>"


def _install_urllib():
    # The host follows redirects itself, so urllib's redirect handler only
    # ever sees final responses.
    opener = urllib.request.build_opener(_GateHandler)
    urllib.request.install_opener(opener)


def _install_requests():
    import requests
    import requests.adapters
    import requests.exceptions
    import requests.structures
    import urllib3

    def send(adapter, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        allow_redirects = getattr(request, "_moat_allow_redirects", True)
        try:
            response = fetch(
                request.method,
                request.url,
                request.headers.items(),
                _read_body(request.body),
                follow_redirects=allow_redirects,
            )
        except EgressDenied as denied:
            raise _RequestsDenied(denied.message, request=request) from None
        except EgressTimeout as error:
            raise requests.exceptions.Timeout(error.message, request=request) from None
        except EgressError as error:
            raise requests.exceptions.ConnectionError(error.message, request=request) from None

        result = requests.Response()
        result.status_code = response.status
        result.reason = response.reason
        result.headers = requests.structures.CaseInsensitiveDict(response.headers)
        result.url = response.url
        result.request = request
        result.connection = adapter
        result.encoding = requests.utils.get_encoding_from_headers(result.headers)
        result.raw = urllib3.HTTPResponse(
            body=io.BytesIO(bytes(response.body)),
            headers=list(response.headers),
            status=response.status,
            reason=response.reason,
            preload_content=False,
            decode_content=False,
        )
        result._content = bytes(response.body)
        result._content_consumed = True
        return result

    class _RequestsDenied(requests.exceptions.ConnectionError, PermissionError):
        """A requests ConnectionError that is also a PermissionError."""

    original_session_send = requests.Session.send

    def session_send(session, request, **kwargs):
        # Tell the adapter whether the caller wants redirects followed, so
        # the host follows them (checking each hop) or returns the 3xx.
        request._moat_allow_redirects = kwargs.get("allow_redirects", True)
        return original_session_send(session, request, **kwargs)

    requests.adapters.HTTPAdapter.send = send
    requests.Session.send = session_send
    globals()["RequestsDenied"] = _RequestsDenied


def install():
    """Point urllib and requests at the host gate."""
    _install_urllib()
    _install_requests()
