"""The guarded outbound HTTP client against a real local server: addresses checked after
DNS, the checked address is the one connected to, allowlists, retries, clear errors that
hide credentials and query values."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from traitlets import TraitError
from traitlets.config import Config

from appbook.server.config import EngineConfig
from appbook.server.errors import OutboundError, OutboundRefused, ValidationError
from appbook.server.http import Guard, OutboundClient, safe_url, why_refused
from appbook.server.outbound import OutboundConfig
from tests.server.outside import Receiver, self_signed

LOOPBACK = ["127.0.0.1/32"]


@pytest.fixture(autouse=True)
def no_outbound_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ALLOWED_HOSTS",
        "ALLOW_PRIVATE",
        "TIMEOUT",
        "RETRIES",
        "BACKOFF",
        "MAX_RESPONSE_BYTES",
    ):
        monkeypatch.delenv(f"APPBOOK_OUTBOUND_{name}", raising=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def client(**settings: object) -> OutboundClient:
    settings.setdefault("backoff", 0.0)
    return OutboundClient(OutboundConfig(**settings))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_loopback_is_refused_by_default(receiver: Receiver) -> None:
    with client() as http, pytest.raises(OutboundRefused) as caught:
        http.post_json(receiver.url(), {"a": 1})
    assert caught.value.message == (
        f"POST {receiver.url()} refused: address 127.0.0.1 (loopback); allow it with "
        "APPBOOK_OUTBOUND_ALLOW_PRIVATE"
    )
    assert receiver.hits == []


def test_loopback_is_reached_when_allowed(receiver: Receiver) -> None:
    with client(allow_private=LOOPBACK) as http:
        response = http.post_json(receiver.url(), {"a": 1}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 200
    [hit] = receiver.hits
    assert (hit.method, hit.path, hit.json()) == ("POST", "/hook", {"a": 1})
    assert hit.headers["idempotency-key"] == "k"
    assert hit.headers["host"] == f"127.0.0.1:{receiver.port}"


def test_allowed_networks_come_from_the_environment(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPBOOK_OUTBOUND_ALLOW_PRIVATE", "10.0.0.0/8, 127.0.0.0/8")
    with OutboundClient() as http:
        assert http.post_json(receiver.url(), {}).status_code == 200


def test_a_name_resolving_to_loopback_is_refused_after_dns(receiver: Receiver) -> None:
    with client() as http, pytest.raises(OutboundRefused) as caught:
        http.post_json(receiver.url(host="localhost"), {})
    assert f"POST http://localhost:{receiver.port}/hook refused: localhost resolves to " in (
        caught.value.message
    )
    assert "127.0.0.1 (loopback)" in caught.value.message
    assert receiver.hits == []


def test_a_name_resolving_to_an_allowed_address_keeps_its_host_header(receiver: Receiver) -> None:
    with client(allow_private=LOOPBACK) as http:
        assert http.post_json(receiver.url(host="localhost"), {}).status_code == 200
    assert receiver.hits[0].headers["host"] == f"localhost:{receiver.port}"


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("169.254.169.254", "169.254.169.254 (link-local)"),
        ("[fe80::1]", "fe80::1 (link-local)"),
        ("[::1]", "::1 (loopback)"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 (loopback)"),
        ("[2002:a9fe:a9fe::]", "2002:a9fe:a9fe:: (link-local)"),  # 6to4 of 169.254.169.254
        ("[64:ff9b::a00:1]", "64:ff9b::a00:1 (private)"),  # NAT64 of 10.0.0.1
        ("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "80ff:fffe (private)"),  # Teredo, 2001::/32
        ("2130706433", "2130706433 resolves to 127.0.0.1 (loopback)"),
        ("0.0.0.0", "0.0.0.0 (unspecified)"),
        ("10.1.2.3", "10.1.2.3 (private)"),
        ("172.16.0.1", "172.16.0.1 (private)"),
        ("192.168.1.1", "192.168.1.1 (private)"),
        ("[fc00::1]", "fc00::1 (private)"),
        ("224.0.0.1", "224.0.0.1 (multicast)"),
        ("100.64.0.1", "100.64.0.1 (not a public address)"),
    ],
)
def test_non_public_addresses_are_refused(host: str, reason: str) -> None:
    with client() as http, pytest.raises(OutboundRefused) as caught:
        http.post_json(f"http://{host}:9/hook", {})
    assert reason in caught.value.message


def test_public_addresses_pass_the_check() -> None:
    for text in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
        assert why_refused(ipaddress.ip_address(text)) is None
    guard = Guard(resolve=lambda host, port: ["93.184.216.34"])
    assert guard.addresses("example.org", 443) == ["93.184.216.34"]


def test_the_connection_goes_to_the_address_that_was_checked(receiver: Receiver) -> None:
    # "rebind.test" exists only in this resolver: reaching the server proves the socket
    # connected to the checked address and never looked the name up again.
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["10.9.9.9", "127.0.0.1"]  # the private one is skipped, loopback allowed

    config = OutboundConfig(allow_private=LOOPBACK, backoff=0.0)
    with OutboundClient(config, guard=Guard.from_config(config, resolve=resolve)) as http:
        response = http.post_json(receiver.url(host="rebind.test"), {"x": 1})
    assert response.status_code == 200
    assert lookups == ["rebind.test"]
    assert receiver.hits[0].headers["host"] == f"rebind.test:{receiver.port}"


def test_a_name_with_only_refused_addresses_names_them() -> None:
    guard = Guard(resolve=lambda host, port: ["127.0.0.1", "169.254.169.254"])
    with pytest.raises(OutboundRefused) as caught:
        guard.addresses("rebind.test", 80)
    assert caught.value.message.startswith(
        "rebind.test resolves to 127.0.0.1 (loopback), 169.254.169.254 (link-local); allow it"
    )


def test_allowed_hosts(receiver: Receiver) -> None:
    guard = Guard(allowed_hosts=("hooks.example.org", "*.corp.example"))
    guard.check_host("hooks.example.org")
    guard.check_host("HOOKS.example.org.")
    guard.check_host("a.b.corp.example")
    for host in ("corp.example", "evilcorp.example", "example.org"):
        with pytest.raises(OutboundRefused, match=f"host '{host}' is not in the allowed hosts"):
            guard.check_host(host)
    with client(allowed_hosts=["hooks.example.org"], allow_private=LOOPBACK) as http:
        with pytest.raises(OutboundRefused) as caught:
            http.post_json(receiver.url(), {})
    assert caught.value.message == (
        f"POST {receiver.url()} refused: host '127.0.0.1' is not in the allowed hosts (hooks.example.org; "
        "APPBOOK_OUTBOUND_ALLOWED_HOSTS)"
    )
    assert receiver.hits == []


def test_5xx_answers_are_retried(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.answer(503, 502)
    with caplog.at_level(logging.WARNING), client(allow_private=LOOPBACK, retries=2) as http:
        assert http.post_json(receiver.url(), {"n": 1}).status_code == 200
    assert [h.json() for h in receiver.hits] == [{"n": 1}] * 3
    assert "answered 503 Service Unavailable; trying again (1 of 3)" in caplog.text


def test_5xx_after_the_last_retry_fails(receiver: Receiver) -> None:
    receiver.answer(500, 500)
    with client(allow_private=LOOPBACK, retries=1) as http, pytest.raises(OutboundError) as caught:
        http.post_json(receiver.url(), {})
    assert caught.value.message == (
        f"POST {receiver.url()} failed: answered 500 Internal Server Error (after 2 tries)"
    )
    assert len(receiver.hits) == 2


def test_4xx_is_not_retried(receiver: Receiver) -> None:
    receiver.answer(404, 404)
    with client(allow_private=LOOPBACK, retries=3) as http:
        with pytest.raises(OutboundError, match=r"failed: answered 404 Not Found$"):
            http.post_json(receiver.url(), {})
        assert http.post_json(receiver.url(), {}, raise_for_status=False).status_code == 404
    assert len(receiver.hits) == 2


def test_connect_errors_are_retried_then_fail() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    with client(allow_private=LOOPBACK, retries=2) as http, pytest.raises(OutboundError) as caught:
        http.post_json(url, {})
    assert caught.value.message.startswith(f"POST {url} failed: could not connect (")
    assert caught.value.message.endswith("(after 3 tries)")


def test_no_answer_within_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        with client(allow_private=LOOPBACK, timeout=0.2) as http:
            with pytest.raises(OutboundError, match=r"failed: no answer within 0.2s$"):
                http.post_json(url, {})


def test_credentials_and_query_values_stay_out_of_errors_and_logs(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    secret_url = f"http://ada:pa55word@127.0.0.1:{receiver.port}/hook?token=s3cr3t&x=1"
    with caplog.at_level(logging.DEBUG), client(allow_private=LOOPBACK) as http:
        http.post_json(secret_url, {})
    assert receiver.hits[0].path == "/hook?token=s3cr3t&x=1"
    assert receiver.hits[0].headers["authorization"].startswith("Basic ")
    refused_url = f"http://ada:pa55word@127.0.0.1:{closed_port()}/hook?token=s3cr3t"
    with caplog.at_level(logging.DEBUG), client() as http, pytest.raises(OutboundRefused) as caught:
        http.post_json(refused_url, {})
    assert "/hook?token=***" in caught.value.message
    for secret in ("pa55word", "s3cr3t"):
        assert secret not in caught.value.message
        assert secret not in caplog.text
    assert safe_url("https://u:p@h.example/a?k=v#f") == "https://h.example/a?k=***"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://files.example.org/x", "gopher://h/"])
def test_only_http_and_https(url: str) -> None:
    with client() as http, pytest.raises(OutboundRefused, match="only http and https URLs"):
        http.request("GET", url)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValidationError) as caught:
        OutboundClient(OutboundConfig(allow_private=["10.0.0.0/33", "nonsense", "10.0.0.0/8"]))
    assert caught.value.errors == {
        "allow_private (APPBOOK_OUTBOUND_ALLOW_PRIVATE)": [
            "'10.0.0.0/33' is not a network (a CIDR such as 10.0.0.0/8)",
            "'nonsense' is not a network (a CIDR such as 10.0.0.0/8)",
        ]
    }
    with pytest.raises(TraitError):
        OutboundConfig(timeout=0)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("APPBOOK_OUTBOUND_TIMEOUT", "soon", "'soon' is not a number of seconds"),
        ("APPBOOK_OUTBOUND_TIMEOUT", "-1", "'-1' is not a number of seconds"),
        ("APPBOOK_OUTBOUND_RETRIES", "-1", "'-1' is not a whole number >= 0"),
        ("APPBOOK_OUTBOUND_BACKOFF", "x", "'x' is not a number of seconds"),
    ],
)
def test_bad_variables_are_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        OutboundClient()
    assert caught.value.errors == {variable: [message]}


def test_settings_reach_child_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    config = EngineConfig(
        config=Config(
            {
                "OutboundConfig": {
                    "allowed_hosts": ["a.example", "b.example"],
                    "allow_private": LOOPBACK,
                    "retries": 5,
                }
            }
        )
    )
    env = config.environment()
    assert env["APPBOOK_OUTBOUND_ALLOWED_HOSTS"] == "a.example,b.example"
    assert env["APPBOOK_OUTBOUND_ALLOW_PRIVATE"] == "127.0.0.1/32"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    child = OutboundConfig()
    assert (child.allowed_hosts, child.allow_private, child.retries) == (
        ["a.example", "b.example"],
        LOOPBACK,
        5,
    )


def test_outbound_errors_map_to_http_statuses() -> None:
    from appbook.extension.status import status_of

    assert status_of(OutboundRefused("refused")) == 403
    assert status_of(OutboundError("failed")) == 502


def test_answers_are_read_whole_up_to_a_limit(receiver: Receiver) -> None:
    receiver.body = b'{"items": [' + b",".join([b"1"] * 100) + b"]}"
    with client(allow_private=LOOPBACK) as http:
        assert http.request("GET", receiver.url()).json() == {"items": [1] * 100}
    with client(allow_private=LOOPBACK, max_response_bytes=50) as http:
        with pytest.raises(OutboundError) as caught:
            http.request("GET", receiver.url())
    assert caught.value.message == f"GET {receiver.url()} failed: its answer is over 50 bytes"


def test_https_is_verified_against_the_name_while_connecting_to_the_checked_address(
    tmp_path: Path,
) -> None:
    cert, context = self_signed(tmp_path)  # for localhost and 127.0.0.1
    with Receiver(tls=context) as server:
        config = OutboundConfig(allow_private=LOOPBACK, ca_file=str(cert), backoff=0.0)
        with OutboundClient(config) as http:
            assert http.post_json(server.url(host="localhost"), {"tls": 1}).status_code == 200
        assert server.hits[0].json() == {"tls": 1}
        # The same address under a name the certificate lacks: TLS checks the name.
        guard = Guard.from_config(config, resolve=lambda host, port: ["127.0.0.1"])
        with OutboundClient(config, guard=guard) as http, pytest.raises(OutboundError) as caught:
            http.post_json(server.url(host="rebind.test"), {})
        assert "certificate verify failed" in caught.value.message.lower()
        assert len(server.hits) == 1
        with OutboundClient(OutboundConfig(allow_private=LOOPBACK)) as http:
            with pytest.raises(OutboundError, match="certificate verify failed"):
                http.post_json(server.url(), {})  # certifi's CAs do not know the test's


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ValidationError) as caught:
        OutboundClient(OutboundConfig(ca_file=str(missing)))
    assert caught.value.errors == {
        "ca_file (APPBOOK_OUTBOUND_CA_FILE)": [f"{missing}: No such file or directory"]
    }
