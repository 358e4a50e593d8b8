#!/usr/bin/env python3
"""Starts moto's S3/IAM server for drkit's tests, with signature checking on.

One fix is applied first. moto verifies signatures with botocore against a URL whose query string
werkzeug has already decoded, so a query value containing "/" (ListObjectsV2 prefix=dev%2F) is
checked as "prefix=dev/", and every correctly signed request with such a value is rejected with
SignatureDoesNotMatch (the official AWS CLI fails the same way; moto issue #5948). The fix
re-encodes query names and values the way SigV4 specifies (RFC 3986, only A-Z a-z 0-9 - _ . ~ left
as they are) before moto computes the canonical request. Nothing else changes: a wrong secret still
gets SignatureDoesNotMatch.

Usage: INITIAL_NO_AUTH_ACTION_COUNT=3 python3 scripts/moto_server.py -H 127.0.0.1 -p PORT
"""
import sys
from urllib.parse import parse_qsl, quote, urlsplit

from moto.iam import access_control

_original = access_control.IAMRequestBase._create_aws_request


def _create_aws_request(self):
    parts = urlsplit(self._path)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
        saved = self._path
        self._path = parts.path + "?" + query
        try:
            return _original(self)
        finally:
            self._path = saved
    return _original(self)


access_control.IAMRequestBase._create_aws_request = _create_aws_request

from moto.server import main  # noqa: E402  (after the patch, so the server uses it)

if __name__ == "__main__":
    sys.exit(main())
