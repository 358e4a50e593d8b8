#!/usr/bin/env python3
"""Starts moto's S3/IAM server for drkit's tests, with signature checking on.

One fix is applied first. moto verifies signatures with botocore against the request URL as
werkzeug has already (partly) decoded it, while botocore's S3 signer expects the URL still encoded. So every
correctly signed request whose path or query holds a character that SigV4 encodes (a "/" in a
ListObjectsV2 prefix, a space, "+", or any non-ASCII character in a key) is rejected with
SignatureDoesNotMatch; the official AWS CLI fails the same way (moto issue #5948). The fix encodes the
path and the query parameters again the way SigV4 for S3 specifies (RFC 3986: only A-Z a-z 0-9 - _ . ~
left as they are, "/" kept in the path) before moto computes the canonical request. Nothing else
changes: a wrong secret or a tampered request still gets SignatureDoesNotMatch.

Left as it is: moto parses the decoded URL with urlparse, which cuts a key at ";" (as path
parameters) before any of this runs, so keys containing ";" still fail against moto (not against S3).

Usage: INITIAL_NO_AUTH_ACTION_COUNT=3 python3 scripts/moto_server.py -H 127.0.0.1 -p PORT
"""
import sys
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from moto.iam import access_control

_original = access_control.IAMRequestBase._create_aws_request


def _sigv4_encoded(decoded_path_and_query):
    parts = urlsplit(decoded_path_and_query)
    # werkzeug decodes some characters (non-ASCII, "+") and leaves others encoded (space, "%"):
    # decode fully once, which gives the key exactly, then encode as SigV4 does.
    path = quote(unquote(parts.path), safe="/-_.~")
    if not parts.query:
        return path
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    return path + "?" + "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


def _create_aws_request(self):
    saved = self._path
    self._path = _sigv4_encoded(saved)
    try:
        return _original(self)
    finally:
        self._path = saved


access_control.IAMRequestBase._create_aws_request = _create_aws_request

from moto.server import main  # noqa: E402  (after the patch, so the server uses it)

if __name__ == "__main__":
    sys.exit(main())
