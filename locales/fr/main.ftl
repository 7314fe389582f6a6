# Shell
skip-link = Aller au contenu
nav-label = Navigation principale
nav-home = Accueil
nav-account = Mon compte
logo-alt = Accueil de { $org }
language-label = Langue
language-submit = Changer de langue
sign-in = Se connecter
sign-out = Se déconnecter
signed-in-as = Connecté(e) : { $name }
footer-text = Intranet propulsé par Beffroi, hébergé par votre organisation.

# Sign-in
login-title = Connexion
login-intro = Connexion de secours réservée à l’administrateur local.
login-username = Identifiant
login-password = Mot de passe
login-submit = Se connecter
login-error-invalid = Identifiant ou mot de passe incorrect.
login-error-locked = Trop d’essais pour cet identifiant. Réessayez dans { $seconds } secondes.
login-error-missing = Saisissez votre identifiant et votre mot de passe.
login-disabled = La connexion par mot de passe est désactivée sur ce serveur.

# Home
home-title = Accueil
home-welcome = Bonjour { $name } !
home-intro = Bienvenue sur l’intranet de { $org }.
home-roles = Vos rôles : { $roles }

# Password change
password-title = Changer de mot de passe
password-must-change = Ce mot de passe était à usage unique : choisissez-en un nouveau pour continuer.
password-current = Mot de passe actuel
password-new = Nouveau mot de passe
password-new-hint = Au moins { $min } caractères.
password-confirm = Confirmez le nouveau mot de passe
password-submit = Enregistrer
password-error-current = Le mot de passe actuel est incorrect.
password-error-mismatch = Les deux nouveaux mots de passe ne sont pas identiques.
password-error-short = Le nouveau mot de passe doit compter au moins { $min } caractères.
password-error-long = Le nouveau mot de passe est trop long.
password-error-same = Le nouveau mot de passe doit être différent de l’actuel.
password-changed = Votre mot de passe a été changé. Vos autres sessions ont été fermées.
form-errors-title = Le formulaire contient des erreurs :

# Errors
error-title = Erreur { $status }
error-status-400 = Requête incorrecte
error-status-403 = Accès refusé
error-status-404 = Page introuvable
error-status-405 = Méthode non autorisée
error-status-408 = Délai dépassé
error-status-413 = Requête trop volumineuse
error-status-415 = Type de contenu non pris en charge
error-status-422 = Données invalides
error-status-429 = Trop de requêtes
error-status-500 = Erreur interne
error-status-503 = Service indisponible
error-status-other = Erreur
error-not-found = La page demandée n’existe pas ou vous n’y avez pas accès.
error-forbidden = Vous n’avez pas le droit d’accéder à cette page.
error-csrf = Le formulaire a expiré ou ne provient pas de ce site. Rechargez la page et réessayez.
error-too-many = Trop de requêtes en peu de temps. Patientez quelques instants avant de réessayer.
error-too-large = La requête dépasse la taille autorisée.
error-media-type = Ce type de contenu n’est pas accepté ici ; envoyez un formulaire.
error-bad-request = La requête est mal formée.
error-method = Cette adresse n’accepte pas cette méthode.
error-internal = Une erreur est survenue de notre côté. Si elle persiste, transmettez l’identifiant ci-dessous à votre support informatique.
error-unavailable = Le service est momentanément indisponible. Réessayez dans un instant.
error-idp-unavailable = Le fournisseur d’identité ne répond pas. Réessayez dans quelques minutes ; si le problème persiste, prévenez votre support informatique.
error-sso-rejected = La connexion a été refusée : la réponse du fournisseur d’identité n’a pas passé nos contrôles de sécurité. Recommencez ; si cela se reproduit, prévenez votre support informatique.
error-sso-expired = Cette demande de connexion a expiré, a déjà servi ou a été commencée dans un autre navigateur. Recommencez la connexion.
error-sso-provider-refused = Le fournisseur d’identité n’a pas accepté la connexion.
error-sso-domain = Votre adresse électronique n’appartient pas à un domaine autorisé sur cet intranet.
error-sso-disabled = Votre compte est désactivé sur cet intranet.
error-sso-callback = Le retour du fournisseur d’identité est incomplet ou mal formé.
login-sso = Se connecter avec { $provider }
login-sso-intro = Utilisez le compte de votre organisation.
login-local-link = Connexion de secours (administrateur local)
error-request-id = Identifiant de la requête : { $id }
error-retry-after = Vous pourrez réessayer dans { $seconds } secondes.
error-back-home = Retour à l’accueil
