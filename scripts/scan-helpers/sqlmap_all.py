#!/usr/bin/env python3
"""Runs sqlmap on every target `web.py targets` listed, a few at once, and fails when any
parameter is injectable or was not tested to the end (standard library only).

    sqlmap_all.py SQLMAP TARGETS.json OUT_DIR BASE JOBS [EXTRA_TARGETS.json]

Each run's console output is kept as OUT_DIR/NN-<method>-<path>.txt; sqlmap's own session and
log files go under OUT_DIR/sqlmap-data/.
"""

import concurrent.futures
import json
import re
import subprocess
import sys
import time

# SQLite is what the demo runs on: payloads for other engines cannot succeed there and would
# triple the time. Level 1, risk 1, boolean-based blind, error-based and UNION techniques:
# - stacked queries are left out: sqlx prepares one statement per query, they cannot apply;
# - time-based is left out: sqlmap's SQLite time-based payloads start at level 3 / risk 2,
#   which triples the run (measured), and a time-based injection is also a boolean one;
# - the 303 after a form is not followed: the redirect, or the error page instead of it, is
#   what a true and a false condition would tell apart, and following doubles the requests.
OPTIONS = ["--batch", "--dbms=SQLite", "--level=1", "--risk=1", "--technique=BEU",
           "--answers=follow=N", "--drop-set-cookie", "--disable-coloring", "--flush-session",
           "--skip-waf", "--timeout=30", "--retries=1"]
INJECTABLE = re.compile(r"identified the following injection point|"
                        r"parameter '([^']+)' (is|seems to be) .*injectable")
# sqlmap names a multipart field 'MULTIPART name' and a JSON member 'JSON name'.
NOT_INJECTABLE = re.compile(r"parameter '(?:(?:MULTIPART|JSON) )?([^']+)' "
                            r"does not seem to be injectable")


def run(sqlmap, target, index, out_dir, base):
    secrets = []
    command = [sqlmap, "-u", target["url"], "-p", ",".join(target["params"]),
               "--output-dir", f"{out_dir}/sqlmap-data/{index:02d}", *OPTIONS]
    headers = [f"Origin: {base}"]
    if target.get("session"):
        with open(target["session"], encoding="utf-8") as f:
            session = json.load(f)
        command += ["--cookie", session["cookie"]]
        secrets.append(session["cookie"])
    if target.get("bearer_file"):
        with open(target["bearer_file"], encoding="utf-8") as f:
            token = f.read().strip()
        headers.append(f"Authorization: Bearer {token}")
        secrets.append(token)
    if target.get("content_type"):
        headers.append(f"Content-Type: {target['content_type']}")
    # sqlmap keeps the last --headers only: every header goes in one, newline-separated.
    command += ["--headers", "\n".join(headers)]
    if target.get("data") is not None:
        command += ["--data", target["data"], "--method", target["method"]]
    name = re.sub(r"[^A-Za-z0-9]+", "-", target["url"].split("://", 1)[1].split("/", 1)[1])
    log = f"{out_dir}/{index:02d}-{target['method']}-{name[:60]}.txt"
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    with open(log, "w", encoding="utf-8") as f:
        line = " ".join(command)
        for secret in secrets:
            line = line.replace(secret, "<secret>")
        f.write(line + "\n\n")
        f.write(done.stdout + done.stderr)
    return target, done.stdout + done.stderr, time.monotonic() - started, log


def verdict(target, output):
    """Failures for one target: injectable parameters, and parameters not tested."""
    where = f"{target['method']} {target['url'].split('?')[0]}"
    failures = []
    if INJECTABLE.search(output):
        failures.append(f"{where}: sqlmap found an injection: "
                        + "; ".join(m.group(0) for m in INJECTABLE.finditer(output)))
    tested = {m.group(1) for m in NOT_INJECTABLE.finditer(output)}
    for param in target["params"]:
        if param not in tested:
            failures.append(f"{where}: parameter {param!r} was not tested to the end "
                            f"(no 'does not seem to be injectable' verdict)")
    return failures


def main(argv):
    if len(argv) not in (5, 6):
        sys.exit(__doc__)
    sqlmap, targets_file, out_dir, base, jobs = argv[:5]
    with open(targets_file, encoding="utf-8") as f:
        targets = json.load(f)["targets"]
    if len(argv) == 6:
        with open(argv[5], encoding="utf-8") as f:
            targets += json.load(f)["targets"]
    if not targets:
        sys.exit("no sqlmap target: the crawl found no parameter")
    failures, params = [], 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=int(jobs)) as pool:
        runs = [pool.submit(run, sqlmap, t, i, out_dir, base) for i, t in enumerate(targets)]
        for future in concurrent.futures.as_completed(runs):
            target, output, seconds, log = future.result()
            found = verdict(target, output)
            params += len(target["params"])
            status = "FAIL" if found else "ok"
            print(f"  {status:4} {seconds:5.1f}s {target['method']:4} "
                  f"{target['url'].split('?')[0]} [{', '.join(target['params'])}] "
                  f"as {target['login']}", flush=True)
            failures += [f"{line} (see {log})" for line in found]
    print(f"sqlmap: {len(targets)} targets, {params} parameters")
    if failures:
        print("\n".join(["sqlmap FAILED:"] + failures), file=sys.stderr)
        sys.exit(1)
    print("sqlmap: no injectable parameter")


if __name__ == "__main__":
    main(sys.argv[1:])
