# Shell
skip-link = Skip to content
nav-label = Main navigation
nav-home = Home
nav-account = My account
logo-alt = { $org } home page
language-label = Language
language-submit = Change language
sign-in = Sign in
sign-out = Sign out
signed-in-as = Signed in as { $name }
footer-text = Intranet powered by Beffroi, hosted by your organisation.

# Sign-in
login-title = Sign in
login-intro = Emergency sign-in for the local administrator only.
login-username = Username
login-password = Password
login-submit = Sign in
login-error-invalid = Wrong username or password.
login-error-locked = Too many attempts for this username. Try again in { $seconds } seconds.
login-error-missing = Enter your username and password.
login-disabled = Password sign-in is turned off on this server.

# Home
home-title = Home
home-welcome = Hello { $name }!
home-intro = Welcome to the { $org } intranet.
home-roles = Your roles: { $roles }

# Password change
password-title = Change password
password-must-change = That password could be used once only: choose a new one to continue.
password-current = Current password
password-new = New password
password-new-hint = At least { $min } characters.
password-confirm = Confirm the new password
password-submit = Save
password-error-current = The current password is wrong.
password-error-mismatch = The two new passwords differ.
password-error-short = The new password must have at least { $min } characters.
password-error-long = The new password is too long.
password-error-same = The new password must differ from the current one.
password-changed = Your password has been changed. Your other sessions have been ended.
form-errors-title = The form has errors:

# Errors
error-title = Error { $status }
error-status-400 = Bad request
error-status-403 = Access denied
error-status-404 = Page not found
error-status-405 = Method not allowed
error-status-408 = Request timeout
error-status-413 = Request too large
error-status-415 = Unsupported content type
error-status-422 = Invalid data
error-status-429 = Too many requests
error-status-500 = Internal error
error-status-503 = Service unavailable
error-status-other = Error
error-not-found = The page you asked for does not exist or you may not see it.
error-forbidden = You are not allowed to see this page.
error-csrf = The form has expired or did not come from this site. Reload the page and try again.
error-too-many = Too many requests in a short time. Wait a moment before trying again.
error-too-large = The request is larger than allowed.
error-media-type = This content type is not accepted here; send a form.
error-bad-request = The request is malformed.
error-method = This address does not accept that method.
error-internal = Something went wrong on our side. If it persists, give the identifier below to your IT support.
error-unavailable = The service is briefly unavailable. Try again in a moment.
error-idp-unavailable = The identity provider does not answer. Try again in a few minutes; if it persists, tell your IT support.
error-sso-rejected = Sign-in was refused: the identity provider's answer failed our security checks. Start again; if it happens again, tell your IT support.
error-sso-expired = This sign-in request has expired, was already used, or was started in another browser. Start signing in again.
error-sso-provider-refused = The identity provider did not accept the sign-in.
error-sso-domain = Your e-mail address is not in a domain allowed on this intranet.
error-sso-disabled = Your account is disabled on this intranet.
error-sso-callback = The identity provider's answer is incomplete or malformed.
login-sso = Sign in with { $provider }
login-sso-intro = Use your organisation's account.
login-local-link = Emergency sign-in (local administrator)
error-request-id = Request identifier: { $id }
error-retry-after = You may try again in { $seconds } seconds.
error-back-home = Back to the home page
