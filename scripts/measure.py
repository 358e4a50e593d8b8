#!/usr/bin/env python3
"""Runs one command; prints `<wall seconds> <peak RSS KiB of the largest process in it>`.
Used by bench.sh so every tool is measured the same way."""
import resource
import subprocess
import sys
import time

if len(sys.argv) < 2:
    sys.exit("usage: measure.py CMD [ARGS...]")
start = time.monotonic()
status = subprocess.call(sys.argv[1:])
elapsed = time.monotonic() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{elapsed:.3f} {rss}")
sys.exit(status)
