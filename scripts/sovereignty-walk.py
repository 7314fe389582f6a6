#!/usr/bin/env python3
"""The agent's side of scripts/sovereignty-check (Python standard library only).

Signs in to a running Beffroi through the test identity provider as `alice` (an administrator),
sets one footer link to an outside address (as an administrator would), creates a space and a
news item with an image and an outside link (as an author would), then walks every page,
stylesheet, script and image reachable from the home page and the admin area by GET. It fails
when a page answers 5xx, or when a page, stylesheet, script or response header names another host
that a browser would contact by itself: src=, href=, action=, srcset=, url(), @import, quoted URLs
in scripts. The only outside addresses allowed are the footer link the administrator set (an
<a href> inside <footer>, followed only if the agent clicks) and the identity provider in a
redirect's Location or the
Content-Security-Policy's form-action; an author's link in a news item is allowed too (an <a href>).

Usage: sovereignty-walk.py BASE_URL CA_CERT IDP_ISSUER
"""

import html.parser
import http.cookiejar
import re
import ssl
import struct
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib

FOOTER_URL = "https://www.example.gouv.fr/mentions-legales"
# A link an author writes in a news item: shown as <a href>, followed only when clicked.
AUTHORED_URL = "https://www.example.org/"
# Never followed: they end the session or leave for the identity provider.
SKIP = re.compile(r"/(auth/|logout|sign-out|signout)")
MAX_PAGES = 400
URL_ATTRS = {"href", "src", "action", "formaction", "poster", "data", "xlink:href", "background"}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.I)
SCRIPT_URL = re.compile(r"""['"`]((?:https?:)?//[^'"`\s]+)""")
# XML namespaces name, they are never fetched.
NAMESPACES = ("http://www.w3.org/",)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def opener(context=None):
    handlers = [urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def png():
    """A 1×1 opaque PNG."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x1f\x4e\x79\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def multipart(fields, file):
    boundary = "sovereignty-boundary-7d3f"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    name, filename, kind, data = file
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: {kind}\r\n\r\n".encode() + data + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def fetch(o, url, form=None, headers=None, raw=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else raw
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        response = o.open(request, timeout=60)
        return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class Page(html.parser.HTMLParser):
    """Every URL-bearing attribute, with whether it is an <a href> inside <footer>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls = []  # (tag, attr, value, in_footer)
        self.css = []
        self.scripts = []
        self.footer_depth = 0
        self.in_style = False
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        if tag == "footer":
            self.footer_depth += 1
        self.in_style = tag == "style"
        self.in_script = tag == "script"
        for name, value in attrs:
            if value is None:
                continue
            if name in URL_ATTRS:
                self.urls.append((tag, name, value, self.footer_depth > 0))
            elif name in ("srcset", "imagesrcset"):
                for part in value.split(","):
                    if part.strip():
                        self.urls.append((tag, name, part.strip().split()[0], False))
            elif name == "style":
                self.css.append(value)
            elif name == "content" and "url=" in value.lower():
                # <meta http-equiv="refresh" content="0; url=…">
                self.urls.append((tag, name, value.split("=", 1)[1], False))

    def handle_endtag(self, tag):
        if tag == "footer" and self.footer_depth:
            self.footer_depth -= 1
        if tag in ("style", "script"):
            self.in_style = self.in_script = False

    def handle_data(self, data):
        if self.in_style:
            self.css.append(data)
        elif self.in_script:
            self.scripts.append(data)


def main():
    base, ca, issuer = sys.argv[1:4]
    origin = urllib.parse.urlsplit(base).netloc
    app = opener(ssl.create_default_context(cafile=ca))
    idp = opener()
    post_headers = {"Origin": base}

    # Sign-in through the provider, as a browser would.
    status, headers, _ = fetch(app, base + "/auth/oidc/start?next=%2F")
    assert status == 303, f"/auth/oidc/start answered {status}"
    url = headers["Location"]
    assert url.startswith(issuer), url
    for _ in range(20):
        if url.startswith(base):
            break
        if "/interaction/" in url:
            _, _, page = fetch(idp, url)
            if b'name="login"' in page:
                form = {"prompt": "login", "login": "alice", "password": "ignored"}
            else:
                form = {"prompt": "consent"}
            _, headers, _ = fetch(idp, url, form)
        else:
            _, headers, _ = fetch(idp, url)
        url = urllib.parse.urljoin(url, headers["Location"])
    status, headers, body = fetch(app, url)
    assert status in (302, 303), f"callback answered {status}: {body[:300]!r}"

    # The administrator sets a footer link to an outside site.
    _, _, page = fetch(app, base + "/admin/branding")
    token = re.search(rb'name="csrf_token" value="([0-9a-f]+)"', page)
    assert token, "no CSRF token on /admin/branding: not signed in as an administrator?"
    status, _, body = fetch(
        app,
        base + "/admin/branding/footer",
        {"csrf_token": token.group(1).decode(), "label_0": "Mentions légales", "url_0": FOOTER_URL},
        post_headers,
    )
    assert status in (200, 303), f"saving the footer answered {status}: {body[:300]!r}"

    # A space, and a news item in it with an image and a link, so that space, item, image and
    # receipt pages exist.
    _, _, page = fetch(app, base + "/admin/spaces/new")
    token = re.search(rb'name="csrf_token" value="([0-9a-f]+)"', page)
    assert token, f"unexpected /admin/spaces/new page: {page[:300]!r}"
    form = {
        "csrf_token": token.group(1).decode(),
        "slug": "sovereignty",
        "name": "Sovereignty check",
        "description": "A space for the sovereignty check.",
        "visibility": "public",
    }
    status, _, answer = fetch(app, base + "/admin/spaces", form, post_headers)
    assert status in (200, 303), f"creating a space answered {status}: {answer[:300]!r}"
    _, _, page = fetch(app, base + "/")
    link = re.search(rb'href="(/news/new\?space=[^"]+)"', page)
    assert link, "the home page offers no space to write in"
    _, _, page = fetch(app, base + link.group(1).decode())
    space = re.search(rb'name="space" value="([^"]*)"', page)
    category = re.search(rb'name="category">\s*<option value="([^"]*)"', page)
    audience = re.search(rb'name="audience" type="checkbox" value="([^"]*)"', page)
    token = re.search(rb'name="csrf_token" value="([0-9a-f]+)"', page)
    assert space and category and audience and token, f"unexpected /news/new page: {page[:300]!r}"
    fields = {
        "csrf_token": token.group(1).decode(),
        "space": space.group(1).decode(),
        "title": "Sovereignty check",
        "category": category.group(1).decode(),
        "body": f"An item with **Markdown**, a [link]({AUTHORED_URL}) and an image.",
        "audience": audience.group(1).decode(),
        "image_alt": "Un pixel de test",
        # A mandatory read, so that a reminder can be e-mailed through the configured relay.
        "ack_required": "1",
        "ack_deadline": "2099-01-31T12:00",
        "intent": "publish",
    }
    body, kind = multipart(fields, ("image", "pixel.png", "image/png", png()))
    status, headers, answer = fetch(
        app, base + "/news/new", raw=body, headers={**post_headers, "Content-Type": kind}
    )
    alert = re.search(rb'role="alert"[^>]*>(.*?)</div>', answer, re.S)
    assert status in (200, 303), f"publishing answered {status}: {alert.group(1) if alert else answer[:300]!r}"
    item = re.match(r"/news/(\d+)", headers.get("Location", ""))
    assert item, f"publishing redirected to {headers.get('Location')!r}"
    # The administrator has not confirmed their own mandatory read: the reminder e-mails them.
    receipts = f"/news/{item.group(1)}/receipts"
    _, _, page = fetch(app, base + receipts)
    token = re.search(rb'name="csrf_token" value="([0-9a-f]+)"', page)
    assert token, f"unexpected {receipts} page: {page[:300]!r}"
    status, headers, answer = fetch(
        app, base + f"/news/{item.group(1)}/remind", {"csrf_token": token.group(1).decode()}, post_headers
    )
    assert status == 303, f"the reminder answered {status}: {answer[:300]!r}"

    queue = [
        "/", "/admin", "/admin/branding", "/admin/directory", "/admin/directory/fields",
        "/admin/spaces", "/admin/spaces/new", "/audit", "/news/new", "/news/pending",
        "/org-chart", "/people", "/profile", "/spaces", "/spaces/sovereignty", "/login",
        "/branding/theme.css",
        "/.well-known/security.txt",
    ]
    seen = set(queue)
    violations = []
    errors = []
    footer_seen = False
    authored_seen = False
    fetched = 0

    def outside(ref, page_url):
        absolute = urllib.parse.urljoin(page_url, ref.strip())
        parts = urllib.parse.urlsplit(absolute)
        if parts.scheme in ("http", "https") and parts.netloc != origin:
            return absolute
        return None

    def enqueue(ref, page_url):
        absolute = urllib.parse.urljoin(page_url, ref.strip())
        parts = urllib.parse.urlsplit(absolute)
        if parts.scheme != "https" or parts.netloc != origin:
            return
        path = parts.path + ("?" + parts.query if parts.query else "")
        if SKIP.search(parts.path) or path in seen or len(seen) >= MAX_PAGES:
            return
        seen.add(path)
        queue.append(path)

    while queue:
        path = queue.pop(0)
        page_url = base + path
        status, headers, body = fetch(app, page_url)
        fetched += 1
        if status >= 500:
            errors.append(f"{path}: {status}")
        for name, value in headers.items():
            if name.lower() == "location":
                target = outside(value, page_url)
                if target and not target.startswith(issuer):
                    violations.append(f"{path}: redirects to {target}")
                continue
            for found in re.findall(r"(?:https?:)?//[A-Za-z0-9.\-\[\]:]+", value):
                target = outside(found, page_url)
                # The policy's form-action names the provider: sign-out ends with a form there.
                if target and not target.startswith(issuer):
                    violations.append(f"{path}: header {name} names {target}")
        kind = headers.get("Content-Type", "")
        text = body.decode("utf-8", "replace")
        css, scripts = [], []
        if kind.startswith("text/html"):
            parser = Page()
            parser.feed(text)
            for tag, attr, value, in_footer in parser.urls:
                target = outside(value, page_url)
                if target:
                    if tag == "a" and attr == "href" and in_footer and target == FOOTER_URL:
                        footer_seen = True
                    elif tag == "a" and attr == "href" and not in_footer and target == AUTHORED_URL:
                        authored_seen = True
                    else:
                        violations.append(f"{path}: <{tag} {attr}> {target}")
                elif attr in ("href", "src", "srcset", "imagesrcset", "poster"):
                    enqueue(value, page_url)
            css, scripts = parser.css, parser.scripts
        elif kind.startswith("text/css"):
            css = [text]
        elif "javascript" in kind:
            scripts = [text]
        for sheet in css:
            for match in CSS_URL.finditer(sheet):
                ref = match.group(1) or match.group(2)
                target = outside(ref, page_url)
                if target:
                    violations.append(f"{path}: CSS names {target}")
                else:
                    enqueue(ref, page_url)
        for script in scripts:
            for ref in SCRIPT_URL.findall(script):
                target = outside(ref, page_url)
                if target and not target.startswith(NAMESPACES):
                    violations.append(f"{path}: script names {target}")

    print(f"walked {fetched} URLs signed in as an administrator")
    if not authored_seen:
        errors.append("the link written in the news item was not found: the walk missed the item")
    if not footer_seen:
        errors.append("the footer link set by the administrator was not found: the walk missed the footer")
    for line in errors + violations:
        print("  " + line)
    if errors or violations:
        sys.exit(1)
    print("no page, stylesheet, script or header names another host")


if __name__ == "__main__":
    main()
