#!/usr/bin/env python3
"""Runs one command; prints `<wall seconds> <peak RSS KiB of the largest process in it> <CPU seconds>`
(user + system of the command and its children; for drkit that is the client's own CPU).
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
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{elapsed:.3f} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime:.3f}")
sys.exit(status)
