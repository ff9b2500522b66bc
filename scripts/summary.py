#!/usr/bin/python3
"""Count meson test results from one or more testlog.json files and print the
line CI reads: "N passed, N failed" (skips on a line of their own). For each
failed test, first the lines of its output that say what failed and its last
lines, so that a CI log's tail is enough to diagnose it."""
import json
import sys

MARKS = ("not ok", "FAIL", "ERROR", "error:", "Assert", "runtime error", "Sanitizer", "timed out")


def show_failure(t):
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    lines = out.splitlines()
    print(f"---- {t.get('name')}: {t.get('result')} (exit {t.get('returncode')}) ----")
    marked = [l for l in lines if any(m in l for m in MARKS)]
    for l in marked[:12]:
        print("  !", l[:300])
    for l in lines[-8:]:
        print("  |", l[:300])


passed = failed = skipped = 0
failures = []
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        print(f"missing test log {path}", file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            failures.append((f"{path}: {t.get('name')} {r}", t))
for f, _ in failures:
    print("FAILED:", f)
for _, t in failures:
    show_failure(t)
if skipped:
    print(f"{skipped} skipped")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
