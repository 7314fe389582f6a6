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
error-request-id = Request identifier: { $id }
error-retry-after = You may try again in { $seconds } seconds.
error-back-home = Back to the home page
