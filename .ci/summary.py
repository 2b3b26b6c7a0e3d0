#!/usr/bin/python3
"""Sum meson test logs into one line: "N passed, N failed".

TAP tests (cmocka) count each test case; pytest runs count each test from pytest's own
summary line; any other test counts once. A test that failed without reporting a failed
case counts as one failure, so a crash is never hidden; so does a build folder without a
test log (make test deletes the old logs before it runs).
"""
import json
import os
import re
import sys

TAP_OK = re.compile(r"^ok \d+", re.M)
TAP_NOT_OK = re.compile(r"^not ok \d+", re.M)
PYTEST_SUMMARY = re.compile(r"^=+ (.*?) in [\d.]+s.*=+$", re.M)


def count_entry(entry):
    """(passed, failed, skipped) cases of one meson test."""
    out = entry.get("stdout") or ""
    good = entry.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
    passed = failed = skipped = 0
    if TAP_OK.search(out) or TAP_NOT_OK.search(out):
        passed = len(TAP_OK.findall(out))
        failed = len(TAP_NOT_OK.findall(out))
    else:
        m = PYTEST_SUMMARY.findall(out)
        if m:
            for part in m[-1].split(","):
                n, _, what = part.strip().partition(" ")
                if not n.isdigit():
                    continue
                if what.startswith("passed"):
                    passed += int(n)
                elif what.startswith(("failed", "error")):
                    failed += int(n)
                elif what.startswith("skipped"):
                    skipped += int(n)
        elif entry.get("result") == "SKIP":
            skipped = 1
        elif good:
            passed = 1
    if not good and failed == 0:
        failed = 1
    return passed, failed, skipped


def main(dirs):
    total_p = total_f = 0
    for d in dirs:
        log = os.path.join(d, "meson-logs", "testlog.json")
        if not os.path.exists(log):
            # make test removes the logs first: none means the suite never ran (a build
            # failure, say), which is a failure, not nothing.
            print(f"{d}: no test results (did the build fail?)")
            total_f += 1
            continue
        p = f = sk = 0
        with open(log, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                entry = json.loads(line)
                a, b, c = count_entry(entry)
                p += a
                f += b
                sk += c
                if c:
                    print(f"{d}: {entry.get('name')}: {c} skipped (reasons: meson-logs/"
                          f"testlog.txt)")
        print(f"{d}: {p} passed, {f} failed, {sk} skipped")
        total_p += p
        total_f += f
    if total_p + total_f == 0:
        total_f = 1
    print(f"{total_p} passed, {total_f} failed")
    return 0 if total_f == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
