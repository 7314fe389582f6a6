#!/usr/bin/env python3
"""Reads the scanners' reports and names each failure (standard library only).

    verdict.py tls SSLYZE.json
        Fails on SSL 2/3 or TLS 1.0/1.1 accepted, any accepted cipher suite that is not an
        ephemeral key exchange with an AEAD cipher, TLS compression, Heartbleed, ROBOT, the
        OpenSSL CCS injection, insecure or client-initiated renegotiation, TLS 1.3 early data,
        or a missing or short Strict-Transport-Security header.
    verdict.py redirect HTTP_URL HTTPS_BASE
        Fails unless the plain-HTTP listener answers every request with a permanent redirect to
        the same path on HTTPS, and serves no page of its own.
    verdict.py wapiti WAPITI.json ACCEPTED.md
        Fails on any vulnerability or anomaly above low, and on any low one whose title is not
        explained under a "### <title>" heading of ACCEPTED.md.
"""

import http.client
import json
import re
import sys
import urllib.parse

HSTS_MIN_AGE = 31536000  # one year, as the HSTS preload list asks


def tls(report_file):
    with open(report_file, encoding="utf-8") as f:
        report = json.load(f)
    failures = []
    servers = report.get("server_scan_results") or []
    if not servers:
        sys.exit("sslyze: no server in the report")
    for server in servers:
        where = "{hostname}:{port}".format(**server["server_location"])
        if server.get("scan_status") != "COMPLETED":
            failures.append(f"{where}: scan {server.get('scan_status')}: "
                            f"{server.get('connectivity_error_trace')}")
            continue
        results = server["scan_result"]

        def result(name):
            entry = results.get(name) or {}
            if entry.get("status") != "COMPLETED":
                failures.append(f"{where}: {name} not completed ({entry.get('status')}: "
                                f"{entry.get('error_reason')})")
                return {}
            return entry["result"]

        legacy = False
        for name, label in (("ssl_2_0_cipher_suites", "SSL 2.0"),
                            ("ssl_3_0_cipher_suites", "SSL 3.0"),
                            ("tls_1_0_cipher_suites", "TLS 1.0"),
                            ("tls_1_1_cipher_suites", "TLS 1.1"),
                            ("tls_1_2_cipher_suites", "TLS 1.2"),
                            ("tls_1_3_cipher_suites", "TLS 1.3")):
            accepted = result(name).get("accepted_cipher_suites", [])
            if accepted and label in ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1"):
                failures.append(f"{where}: {label} accepted")
            if accepted and label != "TLS 1.3":
                legacy = True
            for suite in accepted:
                cipher = suite["cipher_suite"]["name"]
                if label == "TLS 1.3":
                    aead = re.search(r"_(GCM|CCM|CHACHA20_POLY1305)_", cipher + "_")
                    forward_secret = True  # every TLS 1.3 key exchange is ephemeral
                else:
                    aead = re.search(r"_WITH_.*_(GCM|CCM|CHACHA20_POLY1305)", cipher)
                    forward_secret = re.match(r"TLS_(ECDHE|DHE)_", cipher)
                if not (aead and forward_secret):
                    failures.append(f"{where}: {label} cipher suite {cipher} is not a "
                                    f"forward-secret AEAD suite")
        if result("tls_compression").get("supports_compression"):
            failures.append(f"{where}: TLS compression supported (CRIME)")
        if result("heartbleed").get("is_vulnerable_to_heartbleed"):
            failures.append(f"{where}: vulnerable to Heartbleed")
        robot = result("robot").get("robot_result", "")
        if not robot.startswith("NOT_VULNERABLE"):
            failures.append(f"{where}: ROBOT: {robot}")
        if result("openssl_ccs_injection").get("is_vulnerable_to_ccs_injection"):
            failures.append(f"{where}: vulnerable to the OpenSSL CCS injection")
        reneg = result("session_renegotiation")
        if reneg.get("is_vulnerable_to_client_renegotiation_dos"):
            failures.append(f"{where}: accepts client-initiated renegotiation (DoS)")
        # TLS 1.3 has no renegotiation at all; below it, only the RFC 5746 kind is safe.
        if legacy and not reneg.get("supports_secure_renegotiation"):
            failures.append(f"{where}: insecure renegotiation (no RFC 5746)")
        if result("tls_1_3_early_data").get("supports_early_data"):
            failures.append(f"{where}: accepts TLS 1.3 early data (replayable requests)")
        headers = result("http_headers")
        if headers.get("http_error_trace"):
            failures.append(f"{where}: HTTP headers not fetched: {headers['http_error_trace']}")
        hsts = headers.get("strict_transport_security_header")
        if not hsts:
            failures.append(f"{where}: no Strict-Transport-Security header")
        elif (hsts.get("max_age") or 0) < HSTS_MIN_AGE:
            failures.append(f"{where}: Strict-Transport-Security max-age {hsts.get('max_age')} "
                            f"is under {HSTS_MIN_AGE}")
        elif not hsts.get("include_subdomains"):
            failures.append(f"{where}: Strict-Transport-Security without includeSubDomains")
        suites = [s["cipher_suite"]["name"]
                  for n in ("tls_1_2_cipher_suites", "tls_1_3_cipher_suites")
                  for s in (results.get(n, {}).get("result") or {}).get("accepted_cipher_suites", [])]
        print(f"{where}: accepted {', '.join(suites) or 'nothing'}; HSTS {hsts}")
    if failures:
        print("\n".join(["TLS FAILED:"] + failures), file=sys.stderr)
        sys.exit(1)
    print("TLS: no weak protocol, cipher suite or missing header")


def redirect(http_url, https_base):
    url = urllib.parse.urlsplit(http_url)
    https = urllib.parse.urlsplit(https_base)
    failures = []
    for method, path in (("GET", "/"), ("GET", "/login?next=%2Fpeople"), ("HEAD", "/people/1"),
                         ("POST", "/login")):
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        connection.request(method, path, body=b"" if method == "POST" else None,
                           headers={"Host": https.netloc})
        response = connection.getresponse()
        body = response.read()
        location = response.getheader("Location") or ""
        wanted = f"https://{https.netloc}{path}"
        print(f"  http {method} {path} -> {response.status} {location}")
        if response.status not in (301, 308):
            failures.append(f"{method} {path}: status {response.status}, not a permanent redirect")
        if location != wanted:
            failures.append(f"{method} {path}: Location {location!r}, expected {wanted!r}")
        if b"<form" in body or b"csrf" in body.lower():
            failures.append(f"{method} {path}: the HTTP listener served a page")
        if response.getheader("Set-Cookie"):
            failures.append(f"{method} {path}: the HTTP listener set a cookie")
        connection.close()
    if failures:
        print("\n".join(["HTTP redirect listener FAILED:"] + failures), file=sys.stderr)
        sys.exit(1)
    print("HTTP redirect listener: permanent redirects to HTTPS only")


def wapiti(report_file, accepted_file):
    with open(report_file, encoding="utf-8") as f:
        report = json.load(f)
    with open(accepted_file, encoding="utf-8") as f:
        explained = {m.group(1).strip().lower()
                     for m in re.finditer(r"^### (.+)$", f.read(), re.MULTILINE)}
    levels = {1: "low", 2: "medium", 3: "high", 4: "critical"}
    failures, lows, count = [], [], 0
    for section in ("vulnerabilities", "anomalies"):
        for title, findings in (report.get(section) or {}).items():
            for finding in findings:
                count += 1
                level = finding.get("level", 0)
                where = f"{finding.get('method')} {finding.get('path')}"
                line = (f"[{levels.get(level, 'info')}] {title}: {where} "
                        f"{finding.get('parameter') or ''} — {finding.get('info')}")
                if level > 1:
                    failures.append(line)
                elif level == 1:
                    lows.append(line)
                    if title.strip().lower() not in explained:
                        failures.append(line + f" (not explained in {accepted_file})")
    infos = report.get("infos") or {}
    crawled = infos.get("crawled_pages_nbr", len(infos.get("crawled_pages") or []))
    print(f"wapiti: {crawled} URLs crawled, {count} findings, {len(lows)} low")
    for line in lows:
        print(f"  accepted {line}")
    if not crawled or crawled < 10:
        failures.append(f"wapiti crawled only {crawled} URLs: the session was probably lost")
    if failures:
        print("\n".join(["wapiti FAILED:"] + failures), file=sys.stderr)
        sys.exit(1)
    print("wapiti: nothing above low, every low finding explained")


def main(argv):
    if len(argv) == 2 and argv[0] == "tls":
        tls(argv[1])
    elif len(argv) == 3 and argv[0] == "redirect":
        redirect(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "wapiti":
        wapiti(argv[1], argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
