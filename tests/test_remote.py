import os
import shutil

import pytest

from churn import cli
from churn.core.errors import ChurnError
from churn.core.integrity import check_dvc_config
from churn.ops.remote import (
    aws_files_env,
    bucket_and_folder,
    bucket_problem,
    ca_bundle_problem,
    check_remote,
    credential_source,
    credentials_problem,
    defined_profiles,
    local_remote_problem,
    missing_profile,
    probe_timeouts,
    shared_profiles,
    shown_url,
)
from conftest import REPO

S3 = {"url": "s3://churn-dvc-storage/churn", "use_ssl": True, "allow_anonymous_login": False}
LOCAL = {"url": "/srv/dvc-storage", "verify": False}
KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
MISSING = (
    "DVC remote 's3' has no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in "
    "the environment, or run dvc remote modify --local s3 access_key_id ... / "
    "secret_access_key ..."
)


def test_s3_without_credentials_names_what_to_set():
    assert credentials_problem("s3", S3, {"HOME": "/home/me", "PATH": "/usr/bin"}) == MISSING
    assert credential_source(S3, {}) is None


def test_message_names_the_remote():
    problem = credentials_problem("team", S3, {})
    assert problem.startswith("DVC remote 'team' has no credentials:")
    assert "dvc remote modify --local team access_key_id" in problem


def test_credentials_from_the_environment():
    assert credentials_problem("s3", S3, KEYS) is None
    assert credential_source(S3, KEYS) == (
        "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
    )


def test_credentials_from_config_local():
    # What Repo().config gives after `dvc remote modify --local s3 access_key_id ...` etc.
    merged = {**S3, "access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret"}
    assert credentials_problem("s3", merged, {}) is None
    assert credential_source(merged, {}) == (
        "the remote's DVC config (access_key_id, secret_access_key)"
    )


@pytest.mark.parametrize(
    ("extra_config", "env", "source"),
    [
        ({"profile": "team"}, {}, "the remote's DVC config (profile)"),
        ({"allow_anonymous_login": True}, {}, "anonymous access (allow_anonymous_login)"),
        ({}, {"AWS_PROFILE": "team"}, "the environment (AWS_PROFILE)"),
        (
            {},
            {"AWS_ROLE_ARN": "arn:aws:iam::1:role/ci", "AWS_WEB_IDENTITY_TOKEN_FILE": "/t"},
            "the environment (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE)",
        ),
    ],
)
def test_other_credential_sources(extra_config, env, source):
    team = {"team"}  # a profile the AWS shared files define with credentials
    assert credentials_problem("s3", {**S3, **extra_config}, env, team) is None
    assert credential_source({**S3, **extra_config}, env, team) == source


@pytest.mark.parametrize(
    ("extra_config", "env", "where"),
    [
        ({"profile": "nosuch"}, {}, "its DVC config's profile"),
        ({}, {"AWS_PROFILE": "nosuch"}, "AWS_PROFILE"),
        ({}, {"AWS_DEFAULT_PROFILE": "nosuch"}, "AWS_DEFAULT_PROFILE"),
    ],
)
def test_a_profile_the_aws_files_lack_is_no_credentials(extra_config, env, where):
    """The AWS SDK fails on it (ProfileNotFound) at the first push; the check passed it."""
    assert credentials_problem("s3", {**S3, **extra_config}, env, {"default", "team"}) == (
        f"DVC remote 's3' has no credentials: {where} names AWS profile 'nosuch', which the "
        "AWS shared credentials and config files do not define with credentials"
    )


def test_default_profile_of_the_aws_files_counts():
    assert credentials_problem("s3", S3, {}, shared_profiles={"default"}) is None
    # Another profile is only used when something names it.
    assert credentials_problem("s3", S3, {}, shared_profiles={"team"}) == MISSING


def test_empty_values_do_not_count():
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": ""}
    assert credentials_problem("s3", {**S3, "access_key_id": ""}, env) == MISSING


@pytest.mark.parametrize(
    ("config", "env", "problem"),
    [
        (
            {"access_key_id": "AKIAEXAMPLE"},
            KEYS,
            "DVC remote 's3' has incomplete credentials: access_key_id is set in its DVC "
            "config but secret_access_key is not; run dvc remote modify --local s3 "
            "secret_access_key ...",
        ),
        (
            {},
            {"AWS_SECRET_ACCESS_KEY": "secret"},
            "DVC remote 's3' has incomplete credentials: AWS_SECRET_ACCESS_KEY is set in the "
            "environment but AWS_ACCESS_KEY_ID is not",
        ),
    ],
)
def test_half_a_key_pair_names_the_other_half(config, env, problem):
    assert credentials_problem("s3", {**S3, **config}, env) == problem


def test_complete_config_keys_win_over_half_set_environment():
    merged = {**S3, "access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret"}
    assert credentials_problem("s3", merged, {"AWS_ACCESS_KEY_ID": "other"}) is None


@pytest.mark.parametrize(
    "config", [LOCAL, {"url": "../../churn-dvc-storage"}, {"url": "gs://bucket/churn"}]
)
def test_remotes_other_than_s3_need_nothing(config):
    assert credentials_problem("local", config, {}) is None


def test_shared_profiles_reads_both_aws_files(tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = A\naws_secret_access_key = B\n[empty]\nregion = x\n"
    )
    config = tmp_path / "config"
    config.write_text("[profile sso]\nsso_session = corp\n[profile plain]\nregion = eu-west-1\n")
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": str(config)}
    assert shared_profiles(env, tmp_path / "nobody") == {"default", "sso"}


def test_shared_profiles_default_location_missing_and_broken_files(tmp_path):
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[default]\naws_access_key_id = A\n")
    assert shared_profiles({}, tmp_path) == {"default"}
    assert shared_profiles({"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no")}, tmp_path) == set()
    broken = tmp_path / "broken"
    broken.write_text("aws_access_key_id = no section header\n")
    assert shared_profiles({"AWS_SHARED_CREDENTIALS_FILE": str(broken)}, tmp_path) == set()


CONFIG = {"core": {"remote": "local"}, "remote": {"local": LOCAL, "s3": S3}}


def test_check_remote_defaults_to_the_default_remote(tmp_path):
    check_remote(None, CONFIG, {}, home=tmp_path)  # local: nothing to check
    with pytest.raises(ChurnError, match=r"^DVC remote 's3' has no credentials"):
        check_remote(None, {**CONFIG, "core": {"remote": "s3"}}, {}, home=tmp_path)
    check_remote("s3", CONFIG, KEYS, home=tmp_path)


def test_check_remote_refuses_unknown_or_missing_names(tmp_path):
    with pytest.raises(ChurnError, match=r"^no DVC remote named 'S3' \(configured: local, s3\)$"):
        check_remote("S3", CONFIG, KEYS, home=tmp_path)
    with pytest.raises(ChurnError, match=r"^no default DVC remote: "):
        check_remote(None, {"core": {}, "remote": {}}, KEYS, home=tmp_path)


@pytest.fixture
def dvc_dir(tmp_path, monkeypatch):
    """A directory with this repository's .dvc/config, as the cwd, and no AWS set-up."""
    (tmp_path / ".dvc").mkdir()
    shutil.copyfile(REPO / ".dvc" / "config", tmp_path / ".dvc" / "config")
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "missing"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing"))
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # found from a subdirectory too
    return tmp_path / ".dvc"


def test_main_fails_in_one_line_without_credentials(dvc_dir, capsys):
    assert cli.main(["remote", "check", "s3"]) == 1
    assert capsys.readouterr().err == f"error: {MISSING}\n"


def test_main_reads_config_local(dvc_dir, capsys):
    """Offline: the URL and credentials only (the bucket is probed in tests/e2e, on moto)."""
    (dvc_dir / "config.local").write_text(
        "['remote \"s3\"']\n    access_key_id = AKIAEXAMPLE\n    secret_access_key = secret\n"
    )
    assert cli.main(["remote", "check", "s3", "--offline"]) == 0


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("bucket/churn", ("bucket", "churn/")),
        ("bucket", ("bucket", "")),
        ("bucket/", ("bucket", "")),
        ("bucket/a/b/", ("bucket", "a/b/")),
        ("/bucket/a", ("bucket", "a/")),
    ],
)
def test_bucket_and_folder_give_the_prefix_dvc_push_lists_under(path, expected):
    """A policy granting ``churn/*`` grants the probe: it lists under ``churn/``, not ``churn``."""
    assert bucket_and_folder(path) == expected


TIMEOUTS = {"connect_timeout": 5, "read_timeout": 15, "deadline": 20}
ENDPOINT = "https://minio.example:9000"


def s3_answer(code: str, message: str) -> OSError:
    """What s3fs raises for S3's answer ``code``: its translation, botocore's error the cause."""
    from botocore.exceptions import ClientError
    from s3fs.errors import translate_boto_error

    answer = {"Error": {"Code": code, "Message": message}}
    return translate_boto_error(ClientError(answer, "ListObjectsV2"))


def test_bucket_problem_names_what_s3_answered():
    """s3fs's translations of S3's answers, each in one line naming the remote and bucket."""
    missing = s3_answer("NoSuchBucket", "The specified bucket does not exist")
    assert isinstance(missing, FileNotFoundError)
    assert bucket_problem("s3", "churn", ENDPOINT, missing, TIMEOUTS) == (
        f"DVC remote 's3': bucket 'churn' does not exist at {ENDPOINT} (create it, or point "
        "the remote at another: dvc remote modify --local s3 url s3://<bucket>/<folder>)"
    )
    denied = s3_answer("AccessDenied", "Access Denied")
    assert bucket_problem("team", "churn", None, denied, TIMEOUTS) == (
        "DVC remote 'team': bucket 'churn' refused access at S3: Access Denied"
    )
    other = s3_answer("InternalError", "We encountered an\ninternal error.")
    assert bucket_problem("s3", "churn", None, other, TIMEOUTS) == (
        "DVC remote 's3': bucket 'churn' could not be listed at S3: OSError: [Errno 121] We "
        "encountered an internal error."
    )
    assert bucket_problem("s3", "b\x1b]0;x\x07", None, RuntimeError(), TIMEOUTS) == (
        "DVC remote 's3': bucket 'b\\x1b]0;x\\x07' could not be listed at S3: RuntimeError"
    )
    url = "https://user:pass@minio.example"
    invalid = ValueError(f"Invalid endpoint: {url}")  # botocore's words, URL and all
    assert bucket_problem("s3", "churn", url, invalid, TIMEOUTS) == (
        "DVC remote 's3': bucket 'churn' could not be listed at https://user:***@minio.example: "
        "ValueError: Invalid endpoint: https://user:***@minio.example"
    )


def test_bucket_problem_blames_the_bucket_only_for_s3s_own_answers():
    """A web-identity token file that is not there is a FileNotFoundError too: not the bucket.

    And an STS endpoint that does not connect is not the S3 endpoint.
    """
    from botocore import exceptions as boto

    token = FileNotFoundError(2, "No such file or directory")
    token.filename = "/nonexistent"
    assert bucket_problem("s3", "churn", ENDPOINT, token, TIMEOUTS) == (
        f"DVC remote 's3': bucket 'churn' could not be listed at {ENDPOINT}: FileNotFoundError: "
        "[Errno 2] No such file or directory: '/nonexistent'"
    )
    refused = PermissionError("Permission denied")  # a local file, not S3's answer
    assert "could not be listed" in bucket_problem("s3", "b", None, refused, TIMEOUTS)
    sts = boto.EndpointConnectionError(endpoint_url="https://sts.amazonaws.com/")
    assert bucket_problem("s3", "churn", ENDPOINT, sts, TIMEOUTS) == (
        f"DVC remote 's3': bucket 'churn' could not be listed at {ENDPOINT}: "
        'EndpointConnectionError: Could not connect to the endpoint URL: "https://sts.amazonaws.com/"'
    )
    hosted = boto.EndpointConnectionError(endpoint_url="https://churn.s3.amazonaws.com/?list")
    assert bucket_problem("s3", "churn", "https://s3.amazonaws.com", hosted, TIMEOUTS) == (
        "DVC remote 's3': could not reach https://s3.amazonaws.com: the connection failed"
    )


def test_bucket_problem_names_an_endpoint_that_does_not_answer():
    """Errors of botocore's own: no answer came, so the endpoint is named, with its timeout."""
    from botocore import exceptions as boto
    from fsspec.exceptions import FSTimeoutError

    url = "https://user:pass@minio.example:9000"
    said = {
        boto.EndpointConnectionError(endpoint_url=url): "the connection failed",
        boto.ConnectTimeoutError(endpoint_url=url): "no connection within 5 s (connect_timeout)",
        boto.ReadTimeoutError(endpoint_url=url): "no answer within 15 s (read_timeout)",
        boto.SSLError(endpoint_url=url, error="bad cert"): (
            "its TLS certificate or handshake failed (ssl_verify)"
        ),
        FSTimeoutError(): "no answer within 20 s",  # the deadline: a server trickling bytes
    }
    for err, reason in said.items():
        assert bucket_problem("s3", "churn", url, err, TIMEOUTS) == (
            f"DVC remote 's3': could not reach https://user:***@minio.example:9000: {reason}"
        )


def test_probe_timeouts_bound_the_probe_whatever_the_remote_says():
    """0 is no timeout to aiohttp (the probe hung): its default then; -1 is refused."""
    assert probe_timeouts("s3", {}) == TIMEOUTS
    set_ = {"connect_timeout": 2, "read_timeout": 0}
    assert probe_timeouts("s3", set_) == {"connect_timeout": 2, "read_timeout": 15, "deadline": 17}
    for key in ("connect_timeout", "read_timeout"):
        with pytest.raises(ChurnError) as err:
            probe_timeouts("s3", {key: -1})
        assert str(err.value) == f"DVC remote 's3': {key} -1: must be 0 or more seconds"


def test_a_ca_bundle_that_is_not_there_is_named_with_its_key(tmp_path):
    (tmp_path / "ca.pem").write_text("")
    missing = str(tmp_path / "missing.pem")
    assert ca_bundle_problem("s3", {"ssl_verify": missing}, {}) == (
        f"DVC remote 's3': ssl_verify {missing}: no such file"
    )
    assert ca_bundle_problem("s3", {}, {"AWS_CA_BUNDLE": missing}) == (
        f"DVC remote 's3': AWS_CA_BUNDLE {missing}: no such file"
    )
    for conf in ({"ssl_verify": str(tmp_path / "ca.pem")}, {"ssl_verify": False}, {}):
        assert ca_bundle_problem("s3", conf, {}) is None


def test_a_profile_the_aws_files_do_not_define_stops_boto_whatever_keys_are_set(tmp_path):
    """--offline said "credentials from the environment"; boto raised ProfileNotFound."""
    (tmp_path / "creds").write_text("[team]\naws_access_key_id = A\naws_secret_access_key = B\n")
    (tmp_path / "cfg").write_text("[profile bare]\nregion = eu-west-1\n")
    files = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "creds"), "AWS_CONFIG_FILE": str(
        tmp_path / "cfg")}  # fmt: skip
    assert defined_profiles(files, tmp_path) == {"team", "bare"}
    config = {"core": {"remote": "s3"}, "remote": {"s3": S3}}
    for env, where in (({"AWS_PROFILE": "ghost"}, "AWS_PROFILE"),
                       ({"AWS_DEFAULT_PROFILE": "ghost"}, "AWS_DEFAULT_PROFILE")):  # fmt: skip
        with pytest.raises(ChurnError) as err:
            check_remote(None, config, {**KEYS, **files, **env}, home=tmp_path)
        assert str(err.value) == (
            f"DVC remote 's3': {where} names AWS profile 'ghost', which the AWS shared "
            "credentials and config files do not define (boto stops on it)"
        )
    ghost = {"core": {"remote": "s3"}, "remote": {"s3": {**S3, "profile": "ghost"}}}
    with pytest.raises(ChurnError, match="its DVC config's profile names AWS profile 'ghost'"):
        check_remote(None, ghost, {**KEYS, **files, "AWS_PROFILE": "team"}, home=tmp_path)
    # Both set: botocore reads AWS_DEFAULT_PROFILE, and AWS_PROFILE not at all.
    check_remote(
        None, config, {**files, "AWS_PROFILE": "ghost", "AWS_DEFAULT_PROFILE": "team"}, tmp_path
    )
    both = {**files, "AWS_PROFILE": "team", "AWS_DEFAULT_PROFILE": "ghost"}
    with pytest.raises(ChurnError, match=r"^DVC remote 's3': AWS_DEFAULT_PROFILE names AWS "):
        check_remote(None, config, {**KEYS, **both}, home=tmp_path)
    for profile in ("team", "bare", "default"):  # defined (keys or not), or boto's default
        check_remote(None, config, {**KEYS, **files, "AWS_PROFILE": profile}, home=tmp_path)
    assert missing_profile("s3", S3, {}, set()) is None


def test_main_checks_the_default_remote_and_says_so(dvc_dir, capsys, caplog):
    """A local remote is a directory dvc push can write: said in one INFO line."""
    caplog.set_level("INFO", logger="churn.remote")
    assert cli.main(["remote", "check"]) == 0
    assert capsys.readouterr().out == ""
    (said,) = [r.getMessage() for r in caplog.records if r.name == "churn.remote"]
    assert said.startswith("DVC remote 'local': the local directory ")
    assert said.endswith("churn-dvc-storage takes files")


def test_a_local_remote_dvc_push_cannot_write_is_named(tmp_path):
    """A remote at /proc/no/such/dir passed, exit 0; dvc push then failed."""
    (tmp_path / "file").write_text("")
    (tmp_path / "ro").mkdir()
    assert local_remote_problem(str(tmp_path / "store")) is None  # dvc push makes it
    assert local_remote_problem(str(tmp_path / "a" / "b")) is None
    assert not (tmp_path / "a").exists()  # the probe leaves nothing behind
    assert local_remote_problem(str(tmp_path)) is None
    assert local_remote_problem(str(tmp_path / "file")) == f"{tmp_path / 'file'} is not a directory"
    problem = local_remote_problem(str(tmp_path / "file" / "store"))
    assert problem == (
        f"{tmp_path / 'file' / 'store'} cannot be written (Not a directory in {tmp_path / 'file'})"
    )
    assert local_remote_problem("/proc/no/such/dir") == (
        "/proc/no/such/dir cannot be written (No such file or directory in /proc)"
    )
    config = {"core": {"remote": "bad"}, "remote": {"bad": {"url": str(tmp_path / "file")}}}
    with pytest.raises(ChurnError) as err:
        check_remote(None, config, {}, home=tmp_path)
    assert str(err.value) == f"DVC remote 'bad': {tmp_path / 'file'} is not a directory"


def test_main_outside_a_dvc_repository(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["remote", "check"]) == 1
    assert capsys.readouterr().err.endswith(": not inside a DVC repository\n")


@pytest.mark.parametrize(
    ("level", "text", "why"),
    [
        (
            "config.local",
            "[core\nremote = x\n",
            "A line that is neither a section nor a key = value at line 1.",
        ),
        ("config.local", "[core]\nbogus = 1\n", "extra keys not allowed @ data['core']['bogus']"),
        ("config", "[core]\nx\ny\n", "Parsing failed with several errors. First error at line 2."),
        (
            "global",
            "['remote \"a\"']\nurl = s3://x\nfoo = 2\n",
            "extra keys not allowed @ data['remote']['a']['foo']",
        ),
        (
            "system",
            b"\xff\xfe",
            "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
        ),
    ],
)
def test_a_dvc_config_file_dvc_cannot_read_is_named(dvc_dir, monkeypatch, capsys, level, text, why):
    """DVC's own message names no file; each command that reads the config names it."""
    for name in ("global", "system"):
        (dvc_dir.parent / name).mkdir()
        monkeypatch.setenv(f"DVC_{name.upper()}_CONFIG_DIR", str(dvc_dir.parent / name))
    path = dvc_dir.parent / level / "config" if level in ("global", "system") else dvc_dir / level
    getattr(path, "write_bytes" if isinstance(text, bytes) else "write_text")(text)
    shown = path.relative_to(dvc_dir.parent)  # the cwd is a subdirectory of the project
    message = f"{path}: DVC cannot read this config file ({why})"
    assert cli.main(["remote", "check"]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"
    monkeypatch.chdir(dvc_dir.parent)
    with pytest.raises(ChurnError) as err:
        check_dvc_config()
    assert str(err.value) == f"{shown}: DVC cannot read this config file ({why})"


def test_readable_dvc_config_files_pass(dvc_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "nowhere"))
    (dvc_dir / "config.local").write_text("[core]\n    remote = s3\n")
    check_dvc_config()
    check_dvc_config(tmp_path / "sub")
    check_dvc_config(tmp_path.parent)  # outside a project: not this check's to say


def test_config_files_are_valid_as_dvc_merges_them(dvc_dir, monkeypatch, tmp_path):
    """A remote's endpoint in one file and its url in another: valid, as DVC reads them.

    The workflows set `endpointurl` (and keys) in config.local when only S3_ENDPOINT is
    given; the url stays in the repository's config.
    """
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "global"))
    (tmp_path / "global").mkdir()
    (dvc_dir / "config.local").write_text(
        "['remote \"s3\"']\n    endpointurl = http://127.0.0.1:9000\n"
    )
    check_dvc_config()
    # A global file that names a remote's endpoint alone, completed by the repository's url.
    (tmp_path / "global" / "config").write_text("['remote \"local\"']\n    jobs = 4\n")
    check_dvc_config()
    # Incomplete to the end: the file named is the one after which it stays invalid.
    (dvc_dir / "config.local").write_text("['remote \"new\"']\n    jobs = 4\n")
    monkeypatch.chdir(dvc_dir.parent)
    with pytest.raises(ChurnError) as err:
        check_dvc_config()
    assert str(err.value) == (
        ".dvc/config.local: DVC cannot read this config file "
        "(expected 'url' for dictionary value @ data['remote']['new'])"
    )


def test_the_file_named_is_the_one_that_gave_the_error_left(dvc_dir, monkeypatch, tmp_path):
    """The repo config lacks a url config.local adds, but config.local breaks core: named."""
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "nowhere"))
    with (dvc_dir / "config").open("a") as config:
        config.write("['remote \"minio\"']\n    endpointurl = http://127.0.0.1:9\n")
    (dvc_dir / "config.local").write_text(
        "[core]\n    autostage = tru\n['remote \"minio\"']\n    url = s3://b/c\n"
    )
    monkeypatch.chdir(dvc_dir.parent)
    with pytest.raises(ChurnError) as err:
        check_dvc_config()
    assert str(err.value).startswith(".dvc/config.local: DVC cannot read this config file (")
    assert "autostage" in str(err.value)


def test_a_broken_config_line_is_named_by_number_never_shown(dvc_dir, capsys):
    """A secret_access_key line without its "=" was printed whole, secret and all."""
    (dvc_dir / "config.local").write_text(
        "['remote \"s3\"']\n    url = s3://b/x\n    secret_access_key TOPSECRET) (x\n"
    )
    assert cli.main(["remote", "check", "s3"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: {dvc_dir / 'config.local'}: DVC cannot read this config file (A line that is "
        "neither a section nor a key = value at line 3.)\n"
    )
    assert "TOPSECRET" not in err


def test_credentialpath_and_configpath_are_read_as_boto_reads_them(tmp_path):
    """A credentialpath counted unread; a configpath's profiles did not count at all.

    A credentialpath to nowhere passed the check, then dvc push could not locate credentials.
    """
    (tmp_path / "creds").write_text("[default]\naws_access_key_id = A\naws_secret_access_key = B\n")
    (tmp_path / "cfg").write_text("[default]\naws_access_key_id = A\naws_secret_access_key = B\n")
    (tmp_path / "empty").write_text("")
    nowhere = str(tmp_path / "nowhere")
    files = {"AWS_SHARED_CREDENTIALS_FILE": nowhere, "AWS_CONFIG_FILE": nowhere}

    def config(**keys):
        return {"core": {"remote": "s3"}, "remote": {"s3": {**S3, **keys}}}

    for keys in ({"credentialpath": nowhere}, {"credentialpath": str(tmp_path / "empty")}):
        with pytest.raises(ChurnError, match=r"^DVC remote 's3' has no credentials: set "):
            check_remote(None, config(**keys), {}, home=tmp_path)
    check_remote(None, config(credentialpath=str(tmp_path / "creds")), {}, home=tmp_path)
    check_remote(None, config(configpath=str(tmp_path / "cfg")), {}, home=tmp_path)
    # A variable already set wins over the remote's path, as in dvc-s3.
    with pytest.raises(ChurnError, match=r"^DVC remote 's3' has no credentials: set "):
        check_remote(None, config(credentialpath=str(tmp_path / "creds")), files, home=tmp_path)
    assert aws_files_env({"credentialpath": "c", "configpath": "f"}, {}) == {
        "AWS_SHARED_CREDENTIALS_FILE": "c",
        "AWS_CONFIG_FILE": "f",
    }
    assert aws_files_env({"credentialpath": "c"}, files) == files


def test_a_url_password_and_a_config_made_name_are_never_printed_raw(tmp_path, caplog):
    """https://user:PASS@host was logged whole; a default name's escapes reached stderr."""
    caplog.set_level("INFO", logger="churn.remote")
    config = {
        "core": {"remote": "a\x1b]0;x\x07b"},
        "remote": {"a\x1b]0;x\x07b": {"url": "https://user:TOPSECRET@example.invalid/x"}},
    }
    check_remote(None, config, {}, home=tmp_path)
    (said,) = [r.getMessage() for r in caplog.records if r.name == "churn.remote"]
    assert said == (
        "DVC remote 'a\\x1b]0;x\\x07b': https://user:***@example.invalid/x "
        "(only S3 credentials are checked here)"
    )
    assert shown_url("ssh://me:pw@host:22/x") == "ssh://me:***@host:22/x"
    assert shown_url("ssh://me@host/x") == "ssh://me@host/x"
    assert shown_url("u:hunter2@127.0.0.1:9000") == "u:***@127.0.0.1:9000"  # no scheme
    assert shown_url("http://u:pw@[::1") == "http://u:***@[::1"  # urlparse refuses it
    bad = {"core": {"remote": "e\x1b[2J"}, "remote": {"e\x1b[2J": S3}}
    with pytest.raises(ChurnError) as err:
        check_remote(None, bad, {}, home=tmp_path)
    assert str(err.value).startswith("DVC remote 'e\\x1b[2J' has no credentials: ")


@pytest.mark.parametrize("url", ["s3://", "s3:///churn"])
def test_an_s3_url_without_a_bucket_is_refused(tmp_path, url):
    """The check said "usable", and dvc push took the first folder for the bucket."""
    config = {"core": {"remote": "s3"}, "remote": {"s3": {"url": url}}}
    with pytest.raises(ChurnError) as err:
        check_remote(None, config, KEYS, home=tmp_path)
    assert str(err.value) == f"DVC remote 's3': {url} names no bucket (s3://<bucket>/<folder>)"
