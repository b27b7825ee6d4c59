#!/usr/bin/env python3
"""Known-answer vectors for `security/msk_iam` (MSK IAM tokens and the STS AssumeRole signature).

The Rust signer is our own SigV4 implementation; these vectors come from an independent one,
botocore, driven exactly the way AWS's `aws-msk-iam-sasl-signer-python` drives it: presign
`GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect` with `SigV4QueryAuth`
(service `kafka-cluster`, 900 s), append `User-Agent` as an unsigned query parameter, then
base64url-encode without padding. The clock is pinned by patching botocore's
`get_current_datetime`.

How the vectors in `src/security/msk_iam/tests.rs` were produced (botocore 1.44.8, Python 3):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install botocore
    /tmp/venv/bin/python crates/endpoint-kafka/tests/data/msk_iam_reference.py

Re-run it after changing any input below and paste the printed values into the Rust tests.
"""

import base64
import datetime
from unittest import mock

import botocore.auth
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
# Holds `/`, `+` and `=` so that the percent-encoding of the token is exercised.
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/session+token=="
# 2025-01-15T08:30:00Z, i.e. 1736929800 seconds after the epoch.
FIXED_TIME = datetime.datetime(2025, 1, 15, 8, 30, 0)
REGION = "us-east-1"
USER_AGENT = "kafka-edge/0.1.0"


def msk_token(credentials):
    """The token as aws-msk-iam-sasl-signer-python's __construct_auth_token builds it."""
    request = AWSRequest(
        method="GET",
        url=f"https://kafka.{REGION}.amazonaws.com/",
        params={"Action": "kafka-cluster:Connect"},
    )
    SigV4QueryAuth(credentials, "kafka-cluster", REGION, expires=900).add_auth(request)
    request.params = {"User-Agent": USER_AGENT}
    url = request.prepare().url
    token = base64.urlsafe_b64encode(url.encode("utf-8")).decode("utf-8").rstrip("=")
    return url, token


def sts_authorization(credentials):
    """The Authorization header of the AssumeRole POST that `msk_iam/sts.rs` sends."""
    body = (
        "Action=AssumeRole"
        "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fmsk_client_role"
        "&RoleSessionName=kafka-edge&Version=2011-06-15"
    )
    request = AWSRequest(
        method="POST",
        url="https://sts.eu-west-1.amazonaws.com/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(credentials, "sts", "eu-west-1").add_auth(request)
    return body, request.headers["Authorization"]


def get_vanilla():
    """AWS's SigV4 test-suite case `get-vanilla`, as a cross-check of this script's setup."""
    request = AWSRequest(method="GET", url="https://example.amazonaws.com/")
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    with mock.patch.object(
        botocore.auth, "get_current_datetime", return_value=datetime.datetime(2015, 8, 30, 12, 36, 0)
    ):
        SigV4Auth(credentials, "service", "us-east-1").add_auth(request)
    return request.headers["Authorization"]


def main():
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=FIXED_TIME):
        for name, token in (("without session token", None), ("with session token", SESSION_TOKEN)):
            credentials = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY, token)
            url, encoded = msk_token(credentials)
            print(f"MSK token, {name}:\n  url:   {url}\n  token: {encoded}")
        body, authorization = sts_authorization(
            Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN)
        )
        print(f"STS AssumeRole POST:\n  body: {body}\n  authorization: {authorization}")
    print(f"get-vanilla:\n  authorization: {get_vanilla()}")


if __name__ == "__main__":
    main()
