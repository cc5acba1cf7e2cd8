"""Check that a DVC remote can be used before pushing or pulling: ``churn remote check``.

For an S3 remote, the URL must name a bucket, and credentials must come from somewhere
boto can find them: the environment (``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, …), the remote's own DVC config (usually ``.dvc/config.local``, which is
never committed) or a profile of the AWS shared files (``~/.aws/credentials``, or those
the remote's ``credentialpath`` and ``configpath`` name). Without any, ``dvc push`` fails
deep inside botocore; this check fails first, in one line naming what to set. Then the
bucket is asked for one key under the remote's folder, through the S3 client dvc-s3 builds
for ``dvc push`` (same endpoint, profile, region, SSL), in one request with a deadline: a
bucket that does not exist, credentials it refuses, an endpoint that does not answer, or
answers but not as S3, are named in one line (``--offline`` skips it). A local directory
is probed for writing; other remote types (gs://, ssh://, …) are named in one INFO line, a
URL's password never shown.

The decision is made by pure functions of the remote's config and the environment
(:func:`credentials_problem`, :func:`credential_source`, :func:`bucket_problem`);
:func:`check` only gathers them.
"""

import configparser
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from churn.core.errors import ChurnError, clip
from churn.core.integrity import check_dvc_config

log = logging.getLogger("churn.remote")

ENV_PAIR = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
CONFIG_PAIR = ("access_key_id", "secret_access_key")
# Remote config keys that name the AWS shared files boto reads (dvc-s3 hands them on as
# AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE, unless those are set already).
FILE_POINTERS = (
    ("credentialpath", "AWS_SHARED_CREDENTIALS_FILE"),
    ("configpath", "AWS_CONFIG_FILE"),
)
# Environment variables (all of a group set) that give boto credentials on their own:
# a named profile, a web identity (e.g. GitHub OIDC), a container role.
ENV_SOURCES = (
    ("AWS_DEFAULT_PROFILE",),
    ("AWS_PROFILE",),
    ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"),
    ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",),
    ("AWS_CONTAINER_CREDENTIALS_FULL_URI",),
)
# What names a profile of the AWS shared files (boto fails on one they lack).
# In the order botocore reads them: AWS_DEFAULT_PROFILE first, where both are set.
PROFILE_VARIABLES = (("AWS_DEFAULT_PROFILE",), ("AWS_PROFILE",))
# Keys of a profile in ~/.aws/config that make boto find credentials for it.
PROFILE_CREDENTIAL_KEYS = frozenset(
    {"aws_access_key_id", "credential_process", "role_arn", "sso_session", "sso_start_url"}
)


def is_s3(remote: Mapping[str, Any]) -> bool:
    """Whether a remote's config (a ``[remote "<name>"]`` section) points at S3."""
    return urlparse(str(remote.get("url", ""))).scheme == "s3"


def _all_set(values: Mapping[str, Any], keys: Sequence[str]) -> bool:
    return all(values.get(key) for key in keys)


def _half_set(values: Mapping[str, Any], pair: Sequence[str]) -> tuple[str, str] | None:
    """``(the one set, the one missing)`` when exactly one key of ``pair`` has a value."""
    first, second = pair
    if bool(values.get(first)) == bool(values.get(second)):
        return None
    return (first, second) if values.get(first) else (second, first)


def credential_source(
    remote: Mapping[str, Any], env: Mapping[str, str], shared_profiles: Collection[str] = ()
) -> str | None:
    """Where boto would get credentials for an S3 remote, in words, or None if nowhere.

    Args:
        remote: The remote's merged DVC config (all levels, ``config.local`` included).
        env: The process environment.
        shared_profiles: Profiles that hold credentials in the AWS shared credentials and
            config files (see :func:`shared_profiles`).

    Returns:
        A short description of the first source found, or None.
    """
    if _all_set(remote, CONFIG_PAIR):
        return "the remote's DVC config (access_key_id, secret_access_key)"
    if remote.get("profile") and remote["profile"] in shared_profiles:
        return "the remote's DVC config (profile)"
    if remote.get("allow_anonymous_login"):
        return "anonymous access (allow_anonymous_login)"
    for group in (ENV_PAIR, *ENV_SOURCES):
        named = group in PROFILE_VARIABLES and env.get(group[0]) not in shared_profiles
        if _all_set(env, group) and not named:
            return f"the environment ({', '.join(group)})"
    named = remote.get("profile") or any(env.get(g[0]) for g in PROFILE_VARIABLES)
    if "default" in shared_profiles and not named:  # a profile named is the one boto reads
        return "the default profile of the AWS shared credentials/config files"
    return None


def credentials_problem(
    name: str,
    remote: Mapping[str, Any],
    env: Mapping[str, str],
    shared_profiles: Collection[str] = (),
) -> str | None:
    """What keeps an S3 remote from authenticating, as one line, or None if nothing does.

    Args:
        name: The remote's name, quoted in the message.
        remote: The remote's merged DVC config (all levels, ``config.local`` included).
        env: The process environment.
        shared_profiles: Profiles that hold credentials in the AWS shared files.

    Returns:
        None for a remote that is not S3 or has credentials; otherwise a message naming
        what to set.
    """
    if not is_s3(remote):
        return None
    half = _half_set(remote, CONFIG_PAIR)
    if half:
        return (
            f"DVC remote '{name}' has incomplete credentials: {half[0]} is set in its DVC "
            f"config but {half[1]} is not; run dvc remote modify --local {name} {half[1]} ..."
        )
    if credential_source(remote, env, shared_profiles):
        return None
    half = _half_set(env, ENV_PAIR)
    if half:
        return (
            f"DVC remote '{name}' has incomplete credentials: {half[0]} is set in the "
            f"environment but {half[1]} is not"
        )
    profiles = [("its DVC config's profile", remote.get("profile"))]
    profiles += [(group[0], env.get(group[0])) for group in PROFILE_VARIABLES]
    for where, profile in profiles:
        if profile:
            return (
                f"DVC remote '{name}' has no credentials: {where} names AWS profile "
                f"{clip(repr(str(profile)), 60)}, which the AWS shared credentials and config "
                "files do not define with credentials"
            )
    return (
        f"DVC remote '{name}' has no credentials: set AWS_ACCESS_KEY_ID and "
        f"AWS_SECRET_ACCESS_KEY in the environment, or run dvc remote modify --local {name} "
        "access_key_id ... / secret_access_key ..."
    )


def _sections(path: Path) -> dict[str, set[str]]:
    """Section name -> its keys, for an INI file; empty if missing or unreadable."""
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as err:
        log.debug("ignoring %s: %s", path, err)
        return {}
    return {section: set(parser[section]) for section in parser.sections()}


def shared_profiles(env: Mapping[str, str], home: Path) -> set[str]:
    """Profiles that hold credentials in the AWS shared credentials and config files.

    Args:
        env: The environment (``AWS_SHARED_CREDENTIALS_FILE`` and ``AWS_CONFIG_FILE``
            move the files, as they do for boto).
        home: The home directory holding ``.aws/``.

    Returns:
        Profile names (``default``, …) with credentials or a way to get them.
    """
    credentials = env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials"
    config = env.get("AWS_CONFIG_FILE") or home / ".aws" / "config"
    profiles = {
        section
        for section, keys in _sections(Path(credentials).expanduser()).items()
        if "aws_access_key_id" in keys
    }
    profiles |= {
        section.removeprefix("profile ")
        for section, keys in _sections(Path(config).expanduser()).items()
        if keys & PROFILE_CREDENTIAL_KEYS
    }
    return profiles


def defined_profiles(env: Mapping[str, str], home: Path) -> set[str]:
    """Every profile the AWS shared credentials and config files define, with or without keys."""
    credentials = env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials"
    config = env.get("AWS_CONFIG_FILE") or home / ".aws" / "config"
    profiles = set(_sections(Path(credentials).expanduser()))
    return profiles | {s.removeprefix("profile ") for s in _sections(Path(config).expanduser())}


def missing_profile(
    name: str, remote: Mapping[str, Any], env: Mapping[str, str], defined: Collection[str]
) -> str | None:
    """The profile boto is told to read, if the AWS files do not define it, as one line.

    boto stops on it (ProfileNotFound) whatever keys are set beside it: the check said
    "credentials from the environment". The remote's ``profile`` is the one named first
    (dvc-s3 hands it to the session), then ``AWS_DEFAULT_PROFILE``, then ``AWS_PROFILE``,
    as botocore reads them; ``default`` may be missing.
    """
    named = [("its DVC config's profile", remote.get("profile"))]
    named += [(group[0], env.get(group[0])) for group in PROFILE_VARIABLES]
    where, profile = next(((w, p) for w, p in named if p), (None, None))
    if not profile or profile == "default" or profile in defined:
        return None
    return (
        f"DVC remote '{name}': {where} names AWS profile {clip(repr(str(profile)), 60)}, which "
        "the AWS shared credentials and config files do not define (boto stops on it)"
    )


def aws_files_env(remote: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """``env`` as boto sees it for ``remote``, with its credentialpath and configpath.

    dvc-s3 hands them on with ``os.environ.setdefault``: a variable already set wins.
    credentialpath alone counted as credentials, unread: a path to nowhere passed the
    check, then dvc push could not locate credentials; a configpath's profiles did not
    count at all.
    """
    seen = dict(env)
    for key, variable in FILE_POINTERS:
        if remote.get(key):
            seen.setdefault(variable, str(remote[key]))
    return seen


def shown_url(url: str) -> str:
    """``url`` to print: a password in it (``https://user:pass@host``) is never shown.

    Also in a URL without a scheme (``user:pass@host:9000``), or one urlparse refuses.
    """
    try:
        parts = urlparse(url)
        password = parts.password
    except ValueError:  # "http://[::1": an IPv6 bracket left open
        return clip(redacted(url))
    if password is None:
        return clip(redacted(url))
    host = parts.netloc.rsplit("@", 1)[1]
    return clip(parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl())


def _dvc_config() -> Mapping[str, Any]:
    """The merged DVC config (system, global, repo, local) of the repository around the cwd.

    The same levels ``Repo().config`` merges, read without opening git or writing ``.dvc/tmp``.
    """
    from dvc.config import Config, ConfigError
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Config(dvc_dir=Repo.find_dvc_dir())
    except NotDvcRepoError as err:
        raise ChurnError(f"{Path.cwd()}: not inside a DVC repository") from err
    except ConfigError as err:
        check_dvc_config()  # names the file
        raise ChurnError(f"DVC {err}") from err


def check_remote(
    name: str | None,
    config: Mapping[str, Any],
    env: Mapping[str, str],
    home: Path | None = None,
) -> str:
    """Raise :class:`ChurnError` if remote ``name`` (None: the default) cannot authenticate.

    Args:
        name: The remote to check, or None for the default remote.
        config: The merged DVC config (``Repo().config``).
        env: The process environment.
        home: The home directory holding ``.aws/`` (default: the user's).

    Returns:
        The remote's name (the default's, if ``name`` is None).

    Raises:
        ChurnError: No such remote, no default remote, or an S3 remote without credentials.
    """
    name = name or config.get("core", {}).get("remote")
    remotes = config.get("remote", {})
    if not name:
        raise ChurnError(
            "no default DVC remote: name one (churn remote check s3) "
            "or set one with dvc remote default --local <name>"
        )
    if name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise ChurnError(f"no DVC remote named '{clip(name)}' (configured: {known})")
    remote = remotes[name]
    shown = clip(name)  # the default's name comes from a config file, unchecked
    env = aws_files_env(remote, env)
    home = Path.home() if home is None else home
    profiles = shared_profiles(env, home)
    problem = s3_url_problem(shown, remote) or credentials_problem(shown, remote, env, profiles)
    if not problem and is_s3(remote):
        problem = missing_profile(shown, remote, env, defined_profiles(env, home))
    if problem:
        raise ChurnError(problem)
    if is_s3(remote):
        log.info(
            "DVC remote '%s': credentials from %s", shown, credential_source(remote, env, profiles)
        )
        return name
    url = str(remote.get("url", ""))
    if urlparse(url).scheme and "://" in url:  # gs://, azure://, ssh://: their own tools
        log.info(
            "DVC remote '%s': %s (only S3 credentials are checked here)", shown, shown_url(url)
        )
        return name
    problem = local_remote_problem(url)
    if problem:
        raise ChurnError(f"DVC remote '{shown}': {problem}")
    log.info("DVC remote '%s': the local directory %s takes files", shown, clip(url, 200))
    return name


def s3_url_problem(name: str, remote: Mapping[str, Any]) -> str | None:
    """An S3 URL without a bucket (``s3://``, ``s3:///churn``), as one line; else None.

    dvc push then took the first folder for the bucket.
    """
    if not is_s3(remote) or urlparse(str(remote.get("url", ""))).netloc:
        return None
    return (
        f"DVC remote '{name}': {clip(str(remote.get('url')))} names no bucket "
        "(s3://<bucket>/<folder>)"
    )


def local_remote_problem(url: str) -> str | None:
    """Why ``dvc push`` could not write to the local directory ``url``, or None.

    It would make the directory: a file is written (and removed) in it, or in the
    nearest folder above it that exists. A remote at /proc/no/such/dir said nothing,
    exit 0, and dvc push failed.
    """
    path = Path(url).absolute()
    if path.exists() and not path.is_dir():
        return f"{clip(url, 200)} is not a directory"
    place = next(p for p in (path, *path.parents) if p.exists())
    try:
        with tempfile.TemporaryFile(dir=place):
            pass
        if place != path:
            (place / path.relative_to(place).parts[0]).mkdir()  # and the folder dvc makes
            (place / path.relative_to(place).parts[0]).rmdir()
    except OSError as err:
        return f"{clip(url, 200)} cannot be written ({err.strerror} in {clip(place, 200)})"
    return None


# One bounded request: a check answers in seconds, where dvc push would retry for minutes.
PROBE_CONNECT_TIMEOUT = 5  # seconds, unless the remote sets connect_timeout
PROBE_READ_TIMEOUT = 15  # seconds, unless the remote sets read_timeout
# The libraries' own log lines ("Found credentials in ...", a refresh's traceback): the
# probe says what happened in one line of its own.
BOTO_LOGGERS = ("botocore", "aiobotocore", "s3fs")
# user:password@ in any URL of a message, with or without a scheme.
URL_PASSWORD = re.compile(r"(?P<user>[^\s/@:]*):[^\s/@]*@")


def redacted(text: str) -> str:
    """``text`` with the password of any ``user:password@`` in it shown as ``***``."""
    return URL_PASSWORD.sub(r"\g<user>:***@", text)


def _said(err: BaseException) -> str:
    """An error's own words on one line, clipped, no URL password in them ("" if none)."""
    return clip(" ".join(redacted(str(err)).split()), 200)


def _shown_endpoint(endpoint: str | None) -> str:
    """The endpoint to name in a message: its URL, no password, or "S3" (AWS's own)."""
    return shown_url(endpoint) if endpoint else "S3"


def bucket_and_folder(fs_path: str) -> tuple[str, str]:
    """``bucket/some/folder`` -> ``("bucket", "some/folder/")``: the prefix dvc push lists under."""
    bucket, _, folder = fs_path.strip("/").partition("/")
    return bucket, f"{folder.strip('/')}/" if folder.strip("/") else ""


def probe_timeouts(name: str, conf: Mapping[str, Any]) -> dict[str, float]:
    """The probe's connect and read timeouts and overall deadline; negative ones refused.

    0 is no timeout to aiohttp, so the probe takes its default there; a per-read timeout
    bounds no request whose server trickles bytes, so the deadline bounds the whole.
    """
    chosen: dict[str, float] = {}
    for key, default in (
        ("connect_timeout", PROBE_CONNECT_TIMEOUT),
        ("read_timeout", PROBE_READ_TIMEOUT),
    ):
        value = conf.get(key)
        if value is not None and value < 0:
            raise ChurnError(f"DVC remote '{name}': {key} {value}: must be 0 or more seconds")
        chosen[key] = value or default
    chosen["deadline"] = chosen["connect_timeout"] + chosen["read_timeout"]
    return chosen


def ca_bundle_problem(name: str, conf: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """A CA bundle file (``ssl_verify``, ``AWS_CA_BUNDLE``) that is not there, named; else None.

    botocore's words named neither the key nor the path: "An HTTP Client raised an
    unhandled exception: [Errno 2] No such file or directory".
    """
    for where, value in (
        ("ssl_verify", conf.get("ssl_verify")),
        ("AWS_CA_BUNDLE", env.get("AWS_CA_BUNDLE")),
    ):
        if isinstance(value, str) and value and not Path(value).expanduser().is_file():
            return f"DVC remote '{name}': {where} {clip(value, 200)}: no such file"
    return None


def _client_error_code(err: BaseException) -> str | None:
    """The S3 error code behind ``err`` (s3fs keeps botocore's ClientError as its cause)."""
    from botocore.exceptions import ClientError

    cause = err.__cause__
    return cause.response.get("Error", {}).get("Code") if isinstance(cause, ClientError) else None


def _reached(err: BaseException, endpoint: str | None) -> bool:
    """Whether a connection error was the S3 endpoint's, not a credential service's (STS)."""
    url = (getattr(err, "kwargs", None) or {}).get("endpoint_url")
    if not url or not endpoint:
        return True
    try:  # virtual-hosted: bucket.s3.amazonaws.com is s3.amazonaws.com's
        return (urlparse(url).hostname or "").endswith(urlparse(endpoint).hostname or "")
    except ValueError:
        return True


def _connection_reason(err: BaseException, timeouts: Mapping[str, Any]) -> str | None:
    """Why the S3 endpoint did not answer, in words; None if it did, or if it was not it."""
    from botocore import exceptions as boto
    from fsspec.exceptions import FSTimeoutError

    if isinstance(err, FSTimeoutError):
        return f"no answer within {timeouts['deadline']:g} s"
    if isinstance(err, boto.ReadTimeoutError):
        return f"no answer within {timeouts['read_timeout']:g} s (read_timeout)"
    if isinstance(err, boto.ConnectTimeoutError):
        return f"no connection within {timeouts['connect_timeout']:g} s (connect_timeout)"
    if isinstance(err, boto.SSLError):
        return "its TLS certificate or handshake failed (ssl_verify)"
    if isinstance(err, boto.ConnectionError):
        return "the connection failed"
    return None


def bucket_problem(
    name: str,
    bucket: str,
    endpoint: str | None,
    err: BaseException,
    timeouts: Mapping[str, Any],
) -> str:
    """What listing ``bucket`` raised, as one line naming the remote, bucket or endpoint.

    s3fs turns S3's answers into Python's, keeping botocore's ClientError as the cause:
    only with one is a FileNotFoundError a missing bucket and a PermissionError a refusal
    (a web-identity token file that is not there is a FileNotFoundError too). botocore's
    connection errors mean the S3 endpoint did not answer, unless another one failed.
    """
    where = _shown_endpoint(endpoint)
    head = f"DVC remote '{name}': bucket {clip(repr(bucket), 80)}"
    reason = _connection_reason(err, timeouts) if _reached(err, endpoint) else None
    if reason:
        return f"DVC remote '{name}': could not reach {where}: {reason}"
    said = _said(err)
    detail = f": {said}" if said else ""
    code = _client_error_code(err)
    if code == "NoSuchBucket":
        return (
            f"{head} does not exist at {where} (create it, or point the remote at another: "
            f"dvc remote modify --local {name} url s3://<bucket>/<folder>)"
        )
    if code and isinstance(err, PermissionError):
        return f"{head} refused access at {where}{detail}"
    return f"{head} could not be listed at {where}: {type(err).__name__}{detail}"


@contextlib.contextmanager
def boto_quiet() -> Iterator[None]:
    """The S3 libraries' loggers held to CRITICAL, then as they were."""
    loggers = [logging.getLogger(name) for name in BOTO_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _s3_client(name: str, cls: Any, conf: dict[str, Any]) -> Any:
    """The s3fs filesystem dvc-s3 builds from ``conf``, not yet connected; its settings named.

    dvc-s3 connects as it builds (``s3fs.connect()``), and connecting finds credentials:
    a ``credential_process`` that waits (an MFA prompt) held the check with no deadline.
    """
    from s3fs import S3FileSystem

    try:
        fs = cls(**conf)
        fs.fs_args.setdefault("config_kwargs", {})["retries"] = {"total_max_attempts": 1}
        client = S3FileSystem(**fs.fs_args)  # what dvc-s3's ``fs`` makes, before connect()
    except Exception as err:  # a setting dvc-s3 or s3fs refuses, before any request
        said = _said(err)
        hint = " (sse_customer_key is not base64)" if "base64" in said else ""
        raise ChurnError(
            f"DVC remote '{name}': its S3 settings are refused{hint}: {type(err).__name__}: {said}"
        ) from err
    client.retries = 1  # s3fs's own retry loop, around botocore's
    return client


async def _first_key(client: Any, bucket: str, folder: str) -> Any:
    """Connect (credentials found) and list one key: the whole probe, under one deadline."""
    await client.set_session()
    return await client._call_s3("list_objects_v2", Bucket=bucket, Prefix=folder, MaxKeys=1)


def _endpoint(client: Any, conf: Mapping[str, Any]) -> str | None:
    """The endpoint asked: the remote's endpointurl, AWS_ENDPOINT_URL_S3, or AWS's own."""
    connected = getattr(client, "_s3", None)  # its ``s3`` property would connect, unbounded
    return getattr(getattr(connected, "meta", None), "endpoint_url", None) or conf.get(
        "endpointurl"
    )


def probe_bucket(name: str, config: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """List one key of S3 remote ``name``'s folder with dvc push's own client; else ChurnError."""
    from dvc.fs import get_cloud_fs
    from fsspec.asyn import sync

    shown = clip(name)  # a default remote's name comes from a config file, unchecked
    cls, conf, fs_path = get_cloud_fs(config, name=name)
    timeouts = probe_timeouts(shown, conf)
    problem = ca_bundle_problem(shown, conf, env)
    if problem:
        raise ChurnError(problem)
    conf.update(connect_timeout=timeouts["connect_timeout"], read_timeout=timeouts["read_timeout"])
    bucket, folder = bucket_and_folder(fs_path)
    with boto_quiet():
        client = _s3_client(shown, cls, conf)
        try:
            answer = sync(
                client.loop, _first_key, client, bucket, folder, timeout=timeouts["deadline"]
            )
        except Exception as err:  # any failure of the probe is its answer, in one line
            if getattr(client, "_s3", None) is None:  # not connected: nothing asked of S3
                raise ChurnError(unconnected(shown, err, timeouts)) from err
            endpoint = _endpoint(client, conf)
            raise ChurnError(bucket_problem(shown, bucket, endpoint, err, timeouts)) from err
    endpoint = _endpoint(client, conf)
    where = _shown_endpoint(endpoint)
    if not isinstance(answer, Mapping) or answer.get("Name") != bucket:
        # A web page answers 200 as well: dvc push then said "Everything is up to date".
        raise ChurnError(
            f"DVC remote '{shown}': {where} did not answer as S3 does (a listing naming the "
            "bucket): is endpointurl the S3 API's address?"
        )
    log.info("DVC remote '%s': bucket %s answered at %s", shown, clip(repr(bucket), 80), where)


def unconnected(name: str, err: BaseException, timeouts: Mapping[str, Any]) -> str:
    """Why no S3 client was made: its settings, or finding its credentials, failed or waited.

    Nothing was asked of S3 yet: a credential_process that failed was "its S3 settings
    are refused", one that waited held the check for good.
    """
    from fsspec.exceptions import FSTimeoutError

    if isinstance(err, FSTimeoutError):
        return (
            f"DVC remote '{name}': no S3 client within {timeouts['deadline']:g} s: finding its "
            "credentials took that long (a credential_process or a sign-in that waits?)"
        )
    said = _said(err)
    detail = f": {said}" if said else ""
    return (
        f"DVC remote '{name}': no S3 client could be made (its settings, or finding its "
        f"credentials): {type(err).__name__}{detail}"
    )


def check(name: str | None, offline: bool = False) -> None:
    """``churn remote check [REMOTE]``: a one-line error naming what keeps it from use.

    An S3 remote's bucket is then listed (:func:`probe_bucket`), unless ``offline``.
    """
    config = _dvc_config()
    name = check_remote(name, config, os.environ)
    if not offline and is_s3(config["remote"][name]):
        probe_bucket(name, config, os.environ)
