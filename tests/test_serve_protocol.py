"""The request-head rules of ``churn.serving.protocol``, on h11 events (no server)."""

import h11
import pytest

from churn.serving.protocol import check_head, origin_form


def request(target: bytes, **headers: str) -> h11.Request:
    """A GET with ``target`` and a Host header (plus ``headers``)."""
    return h11.Request(method="GET", target=target, headers=[("Host", "test"), *headers.items()])


@pytest.mark.parametrize(
    ("target", "path", "host"),
    [
        (b"http://churn.example:8000/v1/predict?x=1", b"/v1/predict?x=1", b"churn.example:8000"),
        (b"HTTPS://churn.example", b"/", b"churn.example"),
        (b"http://churn.example?x=1", b"/?x=1", b"churn.example"),
        (b"http:///health", b"/health", b""),
    ],
)
def test_an_absolute_form_target_becomes_its_path_and_its_host(target, path, host):
    """RFC 9112 3.2.2: the path and query are the target; the authority replaces Host."""
    found = origin_form(request(target, accept="*/*"))
    assert found.target == path
    assert list(found.headers) == [(b"host", host), (b"accept", b"*/*")]
    assert (found.method, found.http_version) == (b"GET", b"1.1")


@pytest.mark.parametrize("target", [b"/v1/predict", b"*", b"/http://x/y", b"ftp://x/y"])
def test_other_targets_are_left_as_they_are(target):
    """Origin-form, asterisk-form and other schemes pass through unchanged."""
    given = request(target)
    assert origin_form(given) is given


def test_a_head_over_the_limit_is_431_and_both_framings_are_400():
    """check_head: the size hint and the length-plus-chunks refusal."""
    small = request(b"/health")
    check_head(small, 1000)
    with pytest.raises(h11.RemoteProtocolError) as big:
        check_head(request(b"/" + b"a" * 1000), 1000)
    assert big.value.error_status_hint == 431
    framed = request(b"/", **{"content-length": "5", "transfer-encoding": "chunked"})
    with pytest.raises(h11.RemoteProtocolError) as both:
        check_head(framed, 1000)
    assert both.value.error_status_hint == 400
