"""End to end: the `s3` remote against a local S3 server (moto): push, empty, pull, identical."""

import contextlib
import os
import shutil
import socket
import threading

import boto3
import pytest
from moto import settings as moto_settings
from moto.server import ThreadedMotoServer

from .conftest import REPO, copy_repo, free_port, output_hashes, sh

pytestmark = pytest.mark.e2e

BUCKET = "churn-test"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint():
    """URL of a moto S3 server on a free port of 127.0.0.1, stopped after the module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(endpoint):
    """A boto3 client of the moto server (dummy keys passed explicitly, not via os.environ)."""
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 (moto accepts any)
    )
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def no_aws(tmp_path_factory):
    """Subprocess env with no AWS set-up of ours: no AWS_* variables, no ~/.aws files.

    The variables are removed from this process for the module (sh() copies os.environ);
    blanking them would not do (botocore refuses an empty AWS_CA_BUNDLE, for one).
    """
    nowhere = tmp_path_factory.mktemp("no-aws")
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            patch.delenv(name)
        yield {
            "AWS_CONFIG_FILE": str(nowhere / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(nowhere / "credentials"),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }


@pytest.fixture(scope="module")
def with_keys(no_aws) -> dict[str, str]:
    """``no_aws`` plus dummy keys: what a developer or CI sets for the real bucket."""
    return {
        **no_aws,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory, s3, endpoint):
    """A fresh copy whose `s3` remote points at the moto bucket (in .dvc/config.local)."""
    repo = copy_repo(tmp_path_factory.mktemp("s3") / "repo")
    sh(repo, "dvc", "remote", "modify", "--local", "s3", "url", f"s3://{BUCKET}/churn")
    sh(repo, "dvc", "remote", "modify", "--local", "s3", "endpointurl", endpoint)
    return repo


def check(repo, env, *remote):
    """`churn remote check [REMOTE]` in ``repo``, with this checkout's code."""
    args = ("python", "-m", "churn", "remote", "check", *remote)
    return sh(repo, *args, check=False, PYTHONPATH=str(REPO / "src"), **env)


def test_push_to_s3_empty_pull_restores_identical_files(repo, s3, with_keys):
    sh(repo, "dvc", "repro")
    before = output_hashes(repo)
    assert "models/model.pkl" in before
    sh(repo, "dvc", "push", "-r", "s3", **with_keys)
    stored = s3.list_objects_v2(Bucket=BUCKET, Prefix="churn/")
    assert stored["KeyCount"] > 0

    shutil.rmtree(repo / ".dvc" / "cache")
    for rel in before:
        (repo / rel).unlink()
    assert output_hashes(repo) == {}
    sh(repo, "dvc", "pull", "-r", "s3", **with_keys)
    assert output_hashes(repo) == before
    assert "Data and pipelines are up to date." in sh(repo, "dvc", "status").stdout


def test_check_without_credentials_fails_in_one_line(repo, no_aws):
    result = check(repo, no_aws, "s3")
    assert result.returncode == 1
    assert result.stderr == (
        "error: DVC remote 's3' has no credentials: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY in the environment, or run dvc remote modify --local s3 "
        "access_key_id ... / secret_access_key ...\n"
    )


def test_check_with_credentials_passes(repo, with_keys, endpoint):
    """The bucket is asked, through dvc-s3's own client; each finding in one INFO line."""
    result = check(repo, with_keys, "s3")
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert result.stderr.splitlines() == [
        "INFO churn.remote: DVC remote 's3': credentials from the environment "
        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
        f"INFO churn.remote: DVC remote 's3': bucket '{BUCKET}' answered at {endpoint}",
    ]


def add_remote(repo, name, url, **options):
    """A remote ``name`` in the copy's .dvc/config.local (replaced if it exists)."""
    sh(repo, "dvc", "remote", "add", "--local", "-f", name, url)
    for key, value in options.items():
        sh(repo, "dvc", "remote", "modify", "--local", name, key, value)


def failure(result):
    """The one error line of a failed check (after its INFO line on credentials)."""
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    found, error = result.stderr.splitlines()
    assert found.startswith("INFO churn.remote: ")
    assert "credentials from the environment" in found
    return error


def test_check_names_a_bucket_that_does_not_exist(repo, with_keys, endpoint):
    """It passed (credentials found), and dvc push failed on NoSuchBucket."""
    add_remote(repo, "nobucket", "s3://no-such-bucket/churn", endpointurl=endpoint)
    assert failure(check(repo, with_keys, "nobucket")) == (
        f"error: DVC remote 'nobucket': bucket 'no-such-bucket' does not exist at {endpoint} "
        "(create it, or point the remote at another: dvc remote modify --local nobucket url "
        "s3://<bucket>/<folder>)"
    )
    offline = check(repo, with_keys, "nobucket", "--offline")  # URL and credentials only
    assert offline.returncode == 0, offline.stderr
    assert "answered" not in offline.stderr


def test_check_names_credentials_the_bucket_refuses(repo, with_keys, endpoint, monkeypatch):
    """Moto checks keys once told to: ours are unknown to it, as a revoked key is to S3."""
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    assert failure(check(repo, with_keys, "s3")) == (
        f"error: DVC remote 's3': bucket '{BUCKET}' refused access at {endpoint}: "
        "The AWS Access Key Id you provided does not exist in our records."
    )


def test_check_names_an_endpoint_that_refuses_connections(repo, with_keys):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    add_remote(repo, "closed", f"s3://{BUCKET}/churn", endpointurl=url)
    assert failure(check(repo, with_keys, "closed")) == (
        f"error: DVC remote 'closed': could not reach {url}: the connection failed"
    )


@pytest.fixture
def web_page():
    """An HTTP server on 127.0.0.1 that answers every request with a 200 web page."""
    import http.server

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html>hello</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_check_refuses_an_endpoint_that_does_not_answer_as_s3(repo, with_keys, web_page):
    """A web page answers 200 too: the check passed, and dvc push pushed nothing, exit 0."""
    add_remote(repo, "web", f"s3://{BUCKET}/churn", endpointurl=web_page)
    assert failure(check(repo, with_keys, "web")) == (
        f"error: DVC remote 'web': {web_page} did not answer as S3 does (a listing naming the "
        "bucket): is endpointurl the S3 API's address?"
    )


def test_an_endpoint_from_the_environment_is_named_and_its_log_lines_kept_back(
    repo, with_keys, endpoint
):
    """The log said "Found endpoint for s3 via: environment_service." twice, from botocore."""
    add_remote(repo, "envonly", f"s3://{BUCKET}/churn")
    result = check(repo, {**with_keys, "AWS_ENDPOINT_URL_S3": endpoint}, "envonly")
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert result.stderr.splitlines()[1:] == [
        f"INFO churn.remote: DVC remote 'envonly': bucket '{BUCKET}' answered at {endpoint}"
    ]


def test_a_credential_service_that_fails_is_not_blamed_on_the_bucket(repo, no_aws, endpoint):
    """A web-identity token file that is not there: a traceback, then "does not exist"."""
    env = {**no_aws, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/x",
           "AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent/token"}  # fmt: skip
    result = check(repo, env, "s3")
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    found, error = result.stderr.splitlines()
    assert "credentials from the environment (AWS_ROLE_ARN" in found
    assert error.startswith(f"error: DVC remote 's3': bucket '{BUCKET}' could not be listed at ")
    assert "/nonexistent/token" in error
    assert "does not exist" not in error


@contextlib.contextmanager
def tcp_server(answer=None):
    """A server on 127.0.0.1 that accepts connections and hands each to ``answer``, if any.

    Yields its URL and the connections accepted; everything stops with the test (at most
    five connections are answered).
    """
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set() and len(accepted) < 5:  # ends with the test
            try:
                conn = server.accept()[0]
            except TimeoutError:
                continue
            accepted.append(conn)
            if answer is not None:
                answer(conn, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()


@pytest.fixture
def silent_endpoint():
    """A server on 127.0.0.1 that accepts connections and never answers; yields (url, count)."""
    with tcp_server() as served:
        yield served


def test_check_asks_an_endpoint_once_and_names_its_silence(repo, with_keys, silent_endpoint):
    """One request within the remote's read_timeout: not botocore's and s3fs's retries."""
    url, accepted = silent_endpoint
    add_remote(repo, "silent", f"s3://{BUCKET}/churn", endpointurl=url, read_timeout="1")
    assert failure(check(repo, with_keys, "silent")) == (
        f"error: DVC remote 'silent': could not reach {url}: no answer within 1 s (read_timeout)"
    )
    assert len(accepted) == 1


def test_check_of_the_default_local_remote_passes_in_one_line(repo, no_aws):
    """A local remote is probed: a directory dvc push can write, said in one INFO line."""
    result = check(repo, no_aws)
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr.startswith("INFO churn.remote: DVC remote 'local': the local directory ")
    assert result.stderr.endswith(" takes files\n")
    assert result.stderr.count("\n") == 1


def trickle(conn: socket.socket, stop: threading.Event) -> None:
    """Answer headers, then a byte of the body every 0.3 s, for at most a minute."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    for _ in range(200):
        if stop.wait(0.3):
            return
        try:
            conn.sendall(b"<")
        except OSError:
            return


@pytest.fixture
def trickling_endpoint():
    """A server on 127.0.0.1 that answers headers, then a byte of its body every 0.3 s."""
    with tcp_server(trickle) as served:
        yield served


def test_a_server_trickling_its_answer_meets_the_deadline(repo, with_keys, trickling_endpoint):
    """A read timeout is per read in aiohttp: a byte every 0.3 s kept the check for minutes."""
    url, accepted = trickling_endpoint
    options = {"endpointurl": url, "read_timeout": "1", "connect_timeout": "1"}
    add_remote(repo, "trickle", f"s3://{BUCKET}/churn", **options)
    assert failure(check(repo, with_keys, "trickle")) == (
        f"error: DVC remote 'trickle': could not reach {url}: no answer within 2 s"
    )
    assert len(accepted) == 1


@pytest.mark.parametrize(
    ("process", "said"),
    [
        (
            "sleep 20",  # waits, as one asking for an MFA code does
            "no S3 client within 2 s: finding its credentials took that long (a "
            "credential_process or a sign-in that waits?)",
        ),
        (
            "false",  # fails
            "no S3 client could be made (its settings, or finding its credentials): "
            "CredentialRetrievalError: ",
        ),
    ],
)
def test_finding_credentials_meets_the_deadline_and_is_named(
    repo, no_aws, endpoint, tmp_path, process, said
):
    """Connecting finds credentials, now under the probe's deadline.

    A credential_process that waited held the check for good; one that failed was blamed
    on the S3 settings.
    """
    config = tmp_path / "aws-config"
    config.write_text(f"[profile waits]\ncredential_process = {process}\n")
    options = {"endpointurl": endpoint, "read_timeout": "1", "connect_timeout": "1"}
    add_remote(repo, "creds", f"s3://{BUCKET}/churn", **options)
    env = {**no_aws, "AWS_CONFIG_FILE": str(config), "AWS_PROFILE": "waits"}
    result = check(repo, env, "creds")
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    found, error = result.stderr.splitlines()
    assert "credentials from the environment (AWS_PROFILE)" in found
    assert error.startswith(f"error: DVC remote 'creds': {said}")
