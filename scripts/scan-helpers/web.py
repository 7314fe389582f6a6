#!/usr/bin/env python3
"""Signs the demo's accounts in and lists what the scanners attack (standard library only).

    web.py signin BASE FINGERPRINT LOGIN ONE_TIME_PASSWORD OUT.json
        Checks that the server presents the certificate whose SHA-256 fingerprint the demo
        printed, signs LOGIN in with its one-time password, goes through the forced password
        change, and writes {"login", "cookie", "csrf_token"} to OUT.json.
    web.py targets BASE OUT.json SESSION.json...
        Crawls the application as each signed-in account and writes the sqlmap targets: every
        GET URL with a query string and every form, one entry per (method, path shape,
        parameter names), with the session of the account that saw it.
    web.py scim BASE TOKEN_FILE OUT.json
        Writes the sqlmap targets of the SCIM API: the list filters and the .search bodies.
    web.py alive SESSION.json...
        Fails unless every session still opens the home page signed in (a scan that lost its
        session would have attacked the sign-in page only).

The crawl stays on BASE, never submits a form itself and never follows /logout: only GETs.
"""

import hashlib
import html.parser
import http.cookiejar
import json
import re
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

NEW_PASSWORD = "beffroi-scan-Beffroi-2024"

# Pages the crawl starts from besides the home page: the ones no menu links to for every role.
SEEDS = [
    "/", "/people?q=a", "/org-chart", "/spaces", "/profile", "/news/pending", "/news/new",
    "/audit", "/admin", "/admin/directory", "/admin/directory/fields", "/admin/spaces",
    "/admin/spaces/new", "/admin/branding",
]
MAX_PAGES_PER_ACCOUNT = 120
# Path segments that are identifiers: /people/123, /news/4, /spaces/rh/pages/accueil keep
# their shape, and two examples of one shape are enough.
EXAMPLES_PER_SHAPE = 2
# Never fetched: ends the session, or downloads that hold no link or form.
NO_CRAWL = re.compile(r"^/(logout|static/|branding/(logo|favicon)|people/\d+/(photo|vcard)"
                      r"|news/\d+/image|audit/export\.|news/\d+/receipts\.csv"
                      r"|spaces/[^/]+/pages/[^/]+/files/\d+$)")
# Forms not attacked: signing out would end the scan's session and the password change would
# change the credentials under it; both are covered by the integration tests.
NO_ATTACK = re.compile(r"^/(logout|account/password)$")


def context():
    # The demo's certificate is self-signed; `fingerprint_of` pins it instead.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def fingerprint_of(base):
    url = urllib.parse.urlsplit(base)
    pem = ssl.get_server_certificate((url.hostname, url.port or 443))
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


class Forms(html.parser.HTMLParser):
    """The forms and links of one page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms, self.links = [], []
        self._form = None
        self._select = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = {"method": (a.get("method") or "get").upper(),
                          "action": a.get("action") or "",
                          "enctype": a.get("enctype") or "", "fields": {}, "files": False}
            self.forms.append(self._form)
        elif tag == "option" and self._form is not None and self._select:
            fields = self._form["fields"]
            # The selected option, else the first that is a real choice.
            if "selected" in a or (not fields.get(self._select) and a.get("value")):
                fields[self._select] = a.get("value", "")
        elif self._form is None or not a.get("name"):
            return
        elif tag == "button" and (a.get("type") or "submit") == "submit":
            self._form["fields"].setdefault(a["name"], a.get("value") or "")
        elif tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "image"):
                self._form["fields"].setdefault(a["name"], a.get("value") or "")
                return
            if kind in ("button", "reset"):
                return
            if kind == "file":
                self._form["files"] = True
                return
            if kind in ("checkbox", "radio") and a["name"] in self._form["fields"] \
                    and "checked" not in a:
                return
            value = a.get("value") or ("on" if kind == "checkbox" else "")
            if kind == "email" and not value:
                value = "scan@example.org"
            elif not value and "required" in a:
                # A valid value where one is required: a refused baseline would hide the
                # queries behind the validation from sqlmap. Optional fields stay empty.
                value = {"url": "https://example.org/", "number": "1", "tel": "01 23 45 67 89",
                         "date": "2030-01-01", "datetime-local": "2030-01-01T08:00"
                         }.get(kind, "scan")
            self._form["fields"][a["name"]] = value
        elif tag == "select":
            self._select = a["name"]
            self._form["fields"].setdefault(a["name"], "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self._form["fields"][a["name"]] = ""

    def handle_data(self, data):
        if self._textarea and self._form is not None:
            self._form["fields"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            if self._form is not None and self._textarea \
                    and not self._form["fields"][self._textarea].strip():
                self._form["fields"][self._textarea] = "Texte du scan."
            self._textarea = None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    def __init__(self, base, cookie=None):
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPSHandler(context=context()),
                    urllib.request.HTTPCookieProcessor(self.jar)]
        self.opener = urllib.request.build_opener(*handlers)
        self.cookie = cookie

    def fetch(self, path, data=None):
        """(final path, status, body) of GET path, or of POST data (a dict) to path."""
        headers = {"Accept-Language": "fr-FR"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Origin"] = self.base
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.base + path, data=body, headers=headers)
        try:
            with self.opener.open(request, timeout=60) as response:
                return (urllib.parse.urlsplit(response.geturl()).path, response.status,
                        response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as e:
            return urllib.parse.urlsplit(e.geturl()).path, e.code, e.read().decode("utf-8", "replace")

    def cookie_header(self):
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def page_forms(body):
    parser = Forms()
    parser.feed(body)
    return parser


def submit(client, page_path, predicate, values):
    path, status, body = client.fetch(page_path)
    forms = [f for f in page_forms(body).forms if predicate(f)]
    if status != 200 or not forms:
        sys.exit(f"{page_path}: no form to sign in with (status {status}, at {path})")
    form = forms[0]
    fields = {k: v or "" for k, v in form["fields"].items()}
    fields.update(values)
    return client.fetch(form["action"] or page_path, fields)


def signin(base, fingerprint, login, password, out):
    served = fingerprint_of(base)
    if served != fingerprint.upper():
        sys.exit(f"{base} presents certificate {served}, the demo printed {fingerprint}")
    client = Client(base)
    # With single sign-on configured, the local form moves from /login to /login/local.
    page = "/login"
    if not any("password" in f["fields"] for f in page_forms(client.fetch(page)[2]).forms):
        page = "/login/local"
    path, status, body = submit(client, page, lambda f: "password" in f["fields"],
                                {"username": login, "password": password})
    if path == "/account/password":
        path, status, body = submit(client, "/account/password", lambda f: "new" in f["fields"],
                                    {"current": password, "new": NEW_PASSWORD,
                                     "confirm": NEW_PASSWORD})
    path, status, body = client.fetch("/")
    forms = page_forms(body).forms
    if status != 200 or not any(f["action"] == "/logout" for f in forms):
        sys.exit(f"{login}: not signed in after the password change (GET / → {status} {path})")
    token = next(f["fields"]["csrf_token"] for f in forms if f["action"] == "/logout")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"login": login, "cookie": client.cookie_header(), "csrf_token": token}, f)
    print(f"{login}: signed in")


def shape(path):
    """The path with its identifiers replaced, so /people/12 and /people/40 are one shape."""
    parts = path.split("/")
    out = []
    for i, part in enumerate(parts):
        if re.fullmatch(r"\d+", part):
            out.append("{n}")
        elif i >= 2 and parts[i - 1] in ("spaces", "pages", "org-chart", "members", "versions"):
            out.append("{s}")
        else:
            out.append(part)
    return "/".join(out)


def crawl(base, session):
    """(pages, forms, query URLs) the account reaches from SEEDS, GET requests only."""
    client = Client(base, session["cookie"])
    queue, seen, shapes = list(SEEDS), set(), {}
    forms, queries = [], []
    while queue and len(seen) < MAX_PAGES_PER_ACCOUNT:
        link = queue.pop(0)
        split = urllib.parse.urlsplit(link)
        if split.netloc and split.netloc != urllib.parse.urlsplit(base).netloc:
            continue
        path = split.path or "/"
        target = path + (f"?{split.query}" if split.query else "")
        if target in seen or NO_CRAWL.match(path):
            continue
        key = (shape(path), tuple(sorted(urllib.parse.parse_qs(split.query))))
        if shapes.get(key, 0) >= EXAMPLES_PER_SHAPE:
            continue
        shapes[key] = shapes.get(key, 0) + 1
        seen.add(target)
        final, status, body = client.fetch(target)
        if final == "/login":
            sys.exit(f"{session['login']}: session lost while crawling {target}")
        if split.query:
            queries.append(target)
        if status != 200:
            continue
        parsed = page_forms(body)
        for form in parsed.forms:
            form["page"] = path
            forms.append(form)
        for href in parsed.links:
            href = urllib.parse.urljoin(path, href.split("#")[0])
            if href.startswith("/"):
                queue.append(href)
    return seen, forms, queries


def one_per_family(params):
    """The first of each family of fields one loop of the handler parses alike: label_0 …
    label_7, url_0 … url_7 (footer links), visibility.bio … visibility.skills (field rules).
    Testing the eight of them would take eight times as long and reach the same code."""
    kept, families = [], set()
    for param in params:
        family = re.sub(r"(_\d+|\.[a-z_]+)$", "", param)
        if family == param or family not in families:
            kept.append(param)
        families.add(family)
    return kept


BOUNDARY = "beffroi-scan-boundary"


def multipart(fields):
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             for name, value in fields.items()]
    return "".join(parts) + f"--{BOUNDARY}--\r\n"


def targets(base, out, session_files):
    base = base.rstrip("/")
    found, skipped, pages = {}, [], 0
    for session_file in session_files:
        with open(session_file, encoding="utf-8") as f:
            session = json.load(f)
        seen, forms, queries = crawl(base, session)
        pages += len(seen)
        for url in queries:
            split = urllib.parse.urlsplit(url)
            params = sorted(urllib.parse.parse_qs(split.query, keep_blank_values=True))
            key = ("GET", shape(split.path), tuple(params))
            found.setdefault(key, {"method": "GET", "url": base + url, "data": None,
                                   "params": params, "session": session_file,
                                   "login": session["login"]})
        for form in forms:
            action = urllib.parse.urljoin(form["page"], form["action"] or form["page"])
            fields = {k: (v or "") for k, v in form["fields"].items()}
            params = sorted(k for k in fields if k != "csrf_token")
            if NO_ATTACK.match(action):
                skipped.append(f"{form['method']} {action}: ends or re-keys the scan's session")
                continue
            if not params:
                if form["files"]:
                    skipped.append(f"{form['method']} {shape(action)}: file upload, "
                                   f"no text field")
                continue
            if "multipart" in form["enctype"]:
                # The text fields of an upload form, sent without a file.
                fields["csrf_token"] = session["csrf_token"]
                key = ("POST", shape(action), tuple(params))
                found.setdefault(key, {"method": "POST", "url": base + action,
                                       "data": multipart(fields),
                                       "content_type": "multipart/form-data; boundary="
                                                       + BOUNDARY,
                                       "params": params, "session": session_file,
                                       "login": session["login"]})
                continue
            if form["method"] == "GET":
                url = action + "?" + urllib.parse.urlencode(fields)
                key = ("GET", shape(action), tuple(params))
                found.setdefault(key, {"method": "GET", "url": base + url, "data": None,
                                       "params": params, "session": session_file,
                                       "login": session["login"]})
            else:
                fields["csrf_token"] = session["csrf_token"]
                key = ("POST", shape(action), tuple(params))
                found.setdefault(key, {"method": "POST", "url": base + action,
                                       "data": urllib.parse.urlencode(fields),
                                       "params": params, "session": session_file,
                                       "login": session["login"]})
    # A target whose parameters are all tested by another target of the same path and method
    # adds nothing: /people?q=a is inside the search form's /people?q=…&department=…
    keys = list(found)
    for key in keys:
        if any(k != key and k[:2] == key[:2] and set(key[2]) < set(k[2]) for k in keys):
            del found[key]
    result = sorted(found.values(), key=lambda t: (t["method"], t["url"]))
    for target in result:
        target["params"] = one_per_family(target["params"])
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"targets": result, "skipped": sorted(set(skipped)), "pages": pages}, f,
                  indent=1)
    n_params = sum(len(t["params"]) for t in result)
    print(f"{pages} pages crawled: {len(result)} targets, {n_params} parameters "
          f"({sum(t['method'] == 'POST' for t in result)} forms posted), "
          f"{len(set(skipped))} forms not attacked")


def scim(base, token_file, out):
    """The SCIM API's query parameters and search body, with the bearer token."""
    base = base.rstrip("/")
    q = urllib.parse.quote
    result = []
    for resource, attribute in (("Users", "userName"), ("Groups", "displayName")):
        scan_filter = q(attribute + ' eq "scan"')
        query = (f"filter={scan_filter}&startIndex=1&count=10"
                 f"&attributes={attribute}&excludedAttributes=meta")
        result.append({"method": "GET", "url": f"{base}/scim/v2/{resource}?{query}",
                       "data": None, "bearer_file": token_file, "login": "scim client",
                       "params": ["filter", "startIndex", "count", "attributes",
                                  "excludedAttributes"]})
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": f'{attribute} sw "s"', "startIndex": 1, "count": 10}
        result.append({"method": "POST", "url": f"{base}/scim/v2/{resource}/.search",
                       "data": json.dumps(body), "bearer_file": token_file,
                       "login": "scim client", "params": ["filter", "startIndex", "count"]})
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"targets": result}, f, indent=1)
    print(f"SCIM: {len(result)} targets, {sum(len(t['params']) for t in result)} parameters")


def alive(base, session_files):
    for session_file in session_files:
        with open(session_file, encoding="utf-8") as f:
            session = json.load(f)
        path, status, body = Client(base, session["cookie"]).fetch("/")
        if status != 200 or not any(f["action"] == "/logout" for f in page_forms(body).forms):
            sys.exit(f"{session['login']}: session no longer signed in (GET / → {status} {path})")
    print(f"{len(session_files)} sessions still signed in")


def main(argv):
    if len(argv) == 6 and argv[0] == "signin":
        signin(*argv[1:])
    elif len(argv) >= 4 and argv[0] == "targets":
        targets(argv[1], argv[2], argv[3:])
    elif len(argv) == 4 and argv[0] == "scim":
        scim(*argv[1:])
    elif len(argv) >= 3 and argv[0] == "alive":
        alive(argv[1], argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
