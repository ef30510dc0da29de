"""Denied credentials on S3: one line naming the lake URL, exit 2, nothing retried.

The shared moto server accepts any key, so these tests run their own moto server process with
authentication on (``INITIAL_NO_AUTH_ACTION_COUNT``: the first requests, which create the IAM
users and their keys, go unauthenticated; every later one is checked against moto's IAM). Users:
``writer`` (s3:*), ``reader`` (s3:Get*/List* only) and ``nobody`` (a key, no policy).

moto 5.2.6 checks a HEAD of an object against an ``s3:HeadObject`` action, where AWS checks
``s3:GetObject`` (AWS has no ``s3:HeadObject`` permission). The reader's policy names both, so it
reads under either rule and still holds no permission to write.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from laion_lake.errors import LakeStorageError
from laion_lake.lake import open_lake
from tests.faults.conftest import ROOT, lake_state
from tests.lake import handmade

# IAM calls made before authentication starts: 3 users x (create, key) + 2 policies
SETUP_ACTIONS = 8
URL = "s3://authlake/lake"


def _policy(*actions: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]})


@pytest.fixture(scope="module")
def authenticating_endpoint():
    """(endpoint, {user: (key, secret)}) of a moto server that checks every request's credentials."""
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_ACTIONS)}
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
        users = {}
        for user, policy in (("writer", _policy("s3:*")), ("reader", _policy("s3:Get*", "s3:List*", "s3:HeadObject")), ("nobody", None)):
            iam.create_user(UserName=user)
            if policy:
                iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=policy)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            users[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        key, secret = users["writer"]
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret).create_bucket(Bucket="authlake")
        handmade.write_handmade_lake(URL, _options(endpoint, *users["writer"]))
        yield endpoint, users
    finally:
        server.terminate()
        server.wait()


def _options(endpoint: str, key: str, secret: str) -> dict:
    return {"endpoint_url": endpoint, "key": key, "secret": secret, "timeout": 10}


def test_denied_credentials_are_one_line_naming_the_lake(authenticating_endpoint):
    endpoint, users = authenticating_endpoint
    key, secret = users["writer"]
    assert open_lake(URL, _options(endpoint, key, secret)).subjects == ["sub-01", "sub-03"]  # the right key reads
    cases = {
        "the access key is not known to the endpoint": _options(endpoint, "AKIAWRONGWRONGWRONG1", secret),
        "the secret does not match the key": _options(endpoint, key, "not-the-secret" * 3),
        "access denied": _options(endpoint, *users["nobody"]),
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    running = {
        why: subprocess.Popen([sys.executable, "-m", "laion_lake.cli", "ls", URL, "--storage-options", json.dumps(options)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for why, options in cases.items()
    }
    for why, process in running.items():
        _, err = process.communicate(timeout=120)
        assert process.returncode == 2, (why, err)
        assert err.strip().splitlines() == [f"laion-lake ls: error: cannot open lake {URL}: {why}"], err


def test_a_read_only_user_reads_and_cannot_write(authenticating_endpoint):
    endpoint, users = authenticating_endpoint
    before = lake_state(URL, _options(endpoint, *users["writer"]))
    lake = open_lake(URL, _options(endpoint, *users["reader"]))
    assert lake_state(URL, _options(endpoint, *users["reader"])) == before
    ids = lake.stimuli["stimulus_id"].values
    data = xr.DataArray(np.ones((len(ids), 4), np.float32), dims=("stimulus_id", "feature"), coords={"stimulus_id": ids})
    # Icechunk reports a refused PUT without its S3 error code: the line says what is known
    refused = r"the endpoint refused to store an object \(are these credentials allowed to write\?\)"
    with pytest.raises(LakeStorageError, match=rf"^cannot (write to|commit to) lake {URL}: {refused}$"):
        lake.write_features("denied", "fc", data)
    assert lake_state(URL, _options(endpoint, *users["writer"])) == before
