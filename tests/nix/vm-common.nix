# Shared pieces of the NixOS VM tests (nixos-test.nix, nixos-test-server.nix):
#
# - a test CA and one TLS certificate for idp.test and cache.test (the tool only talks HTTPS
#   to a non-loopback issuer, and Nix fetches the cache over HTTPS as in production);
# - the `server` node: Keycloak at https://idp.test:8443 with a realm imported at start (a
#   public client with the device grant for people, a confidential client with a service
#   account for servers, a user), and a binary cache at https://cache.test served by nginx,
#   which asks a small gate service (auth_request) to check the token in the Basic-auth
#   password against Keycloak; its paths are signed with a fixed test key, so that a
#   client's daemon can trust it from boot (an untrusted user cannot pass
#   `trusted-public-keys` or `substituters` to the daemon);
# - helpers for the test scripts.
{ pkgs, lib }:

let
  issuer = "https://idp.test:8443/realms/test";

  certs =
    pkgs.runCommand "nix-cache-login-test-certs" { nativeBuildInputs = [ pkgs.openssl ]; }
      ''
        mkdir -p $out
        cd $out
        cat > req.cnf <<EOF
        [req]
        distinguished_name = dn
        prompt = no
        [dn]
        CN = nix-cache-login test
        EOF
        cat > server.ext <<EOF
        basicConstraints = CA:FALSE
        keyUsage = critical,digitalSignature,keyEncipherment
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:idp.test,DNS:cache.test
        EOF
        openssl req -config req.cnf -x509 -newkey rsa:2048 -nodes -days 3650 \
          -keyout ca.key -out ca.crt -subj "/CN=nix-cache-login test CA" \
          -addext "basicConstraints=critical,CA:TRUE" \
          -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -config req.cnf -newkey rsa:2048 -nodes \
          -keyout server.key -out server.csr -subj "/CN=idp.test"
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
          -days 3650 -extfile server.ext -out server.crt
        openssl verify -CAfile ca.crt server.crt
      '';

  user = {
    name = "alice";
    password = "alice-password";
  };

  serviceAccount = {
    clientId = "ci-runner";
    secret = "ci-runner-secret";
  };

  # A signing key for the test cache only (made with `nix-store --generate-binary-cache-key
  # cache.test-1`); it signs nothing but the path the test makes.
  cacheKey = {
    public = "cache.test-1:wYMrFi3t5G589C3QK1NQnyLLzGV52QWqbP6VEL2AO8o=";
    secretFile = pkgs.writeText "cache.test-1.sec" "cache.test-1:LZKipjsPOv4OIsk44PBNPNfQqF8qUX0P3n92ZXZlErHBgysWLe3kbnz0LdArU1CfIsvMZXnZBaps/pUQvYA7yg==";
  };

  gateClient = {
    clientId = "cache-gate";
    secret = "cache-gate-secret";
  };

  realm = {
    realm = "test";
    enabled = true;
    sslRequired = "external";
    accessTokenLifespan = 300;
    clients = [
      {
        # People: `nix-cache-login login` (browser, PKCE) and `login --device`.
        clientId = "nix-cache-login";
        name = "nix-cache-login";
        enabled = true;
        protocol = "openid-connect";
        publicClient = true;
        standardFlowEnabled = true;
        directAccessGrantsEnabled = false;
        consentRequired = false;
        # Keycloak matches a loopback redirect URI (http://127.0.0.1 or http://localhost,
        # not http://[::1]) once more with the port removed (RedirectUtils), so this one
        # accepts whatever port the tool listens on: callback_port = 0, the default.
        redirectUris = [ "http://127.0.0.1/callback" ];
        attributes = {
          "oauth2.device.authorization.grant.enabled" = "true";
          "pkce.code.challenge.method" = "S256";
        };
      }
      {
        # Servers: `nix-cache-login service-account` (client credentials).
        inherit (serviceAccount) clientId secret;
        enabled = true;
        protocol = "openid-connect";
        publicClient = false;
        clientAuthenticatorType = "client-secret";
        serviceAccountsEnabled = true;
        standardFlowEnabled = false;
        directAccessGrantsEnabled = false;
      }
      {
        # The binary cache's gate: introspects the tokens it is shown.
        inherit (gateClient) clientId secret;
        enabled = true;
        protocol = "openid-connect";
        publicClient = false;
        clientAuthenticatorType = "client-secret";
        serviceAccountsEnabled = false;
        standardFlowEnabled = false;
        directAccessGrantsEnabled = false;
      }
    ];
    users = [
      {
        username = user.name;
        enabled = true;
        # All of the default user profile, so that no "update your account" page appears.
        email = "alice@example.test";
        emailVerified = true;
        firstName = "Alice";
        lastName = "Tester";
        credentials = [
          {
            type = "password";
            value = user.password;
            temporary = false;
          }
        ];
        requiredActions = [ ];
      }
      {
        # Realm exports carry a client's service-account user like this; importing the
        # client alone does not always create it.
        username = "service-account-${serviceAccount.clientId}";
        enabled = true;
        serviceAccountClientId = serviceAccount.clientId;
      }
    ];
  };

  realmFile = pkgs.writeText "test-realm.json" (builtins.toJSON realm);

  # The cache's gate: nginx's auth_request sends every request here first. A request passes
  # when its Basic-auth password is an access token that Keycloak calls active.
  gate = pkgs.writeText "cache-gate.py" ''
    import base64
    import json
    import ssl
    import urllib.parse
    import urllib.request
    from http.server import BaseHTTPRequestHandler, HTTPServer

    ISSUER = "${issuer}"
    CONTEXT = ssl.create_default_context(cafile="${certs}/ca.crt")


    def user_of(token):
        """The user a valid access token belongs to; None for anything else."""
        form = urllib.parse.urlencode({
            "token": token,
            "client_id": "${gateClient.clientId}",
            "client_secret": "${gateClient.secret}",
        }).encode()
        url = ISSUER + "/protocol/openid-connect/token/introspect"
        try:
            with urllib.request.urlopen(url, form, context=CONTEXT, timeout=10) as r:
                info = json.load(r)
            if info.get("active") is True:
                return info.get("username") or info.get("sub") or "?"
        except Exception as e:  # noqa: BLE001 - a test helper; say why and refuse
            print(f"introspection failed: {e}", flush=True)
        # Fallback for providers that keep introspection to the token's audience.
        request = urllib.request.Request(
            ISSUER + "/protocol/openid-connect/userinfo",
            headers={"Authorization": "Bearer " + token},
        )
        try:
            with urllib.request.urlopen(request, context=CONTEXT, timeout=10) as r:
                info = json.load(r)
            return info.get("preferred_username") or info.get("sub") or "?"
        except Exception as e:  # noqa: BLE001
            print(f"userinfo refused the token: {e}", flush=True)
        return None


    class Gate(BaseHTTPRequestHandler):
        def do_GET(self):
            header = self.headers.get("Authorization", "")
            who = None
            if header.startswith("Basic "):
                try:
                    decoded = base64.b64decode(header[6:]).decode()
                    _login, _, token = decoded.partition(":")
                    who = user_of(token) if token else None
                except ValueError:
                    who = None
            uri = self.headers.get("X-Original-URI", "")
            print(f"{'accepted' if who else 'refused'} {who or '-'} {uri}", flush=True)
            self.send_response(200 if who else 401)
            self.end_headers()

        def log_message(self, *args):
            pass


    HTTPServer(("127.0.0.1", 9000), Gate).serve_forever()
  '';

  # Approves a device-flow login the way a person would in a browser: open the provider's
  # device page, enter the user code, sign in, accept the consent page if one comes.
  approveDevice = pkgs.writeScriptBin "approve-device" ''
    #!${pkgs.python3.interpreter}
    """approve-device ISSUER USER_CODE USERNAME PASSWORD"""
    import html.parser
    import http.cookiejar
    import ssl
    import sys
    import urllib.parse
    import urllib.request

    issuer, user_code, username, password = sys.argv[1:5]
    context = ssl.create_default_context(cafile="/etc/ssl/certs/ca-certificates.crt")
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        urllib.request.HTTPSHandler(context=context),
    )


    class Forms(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.forms = []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "form":
                self.forms.append({"action": a.get("action") or "", "fields": {}})
            elif tag in ("input", "button") and self.forms and a.get("name"):
                kind = (a.get("type") or ("submit" if tag == "button" else "text")).lower()
                if kind in ("checkbox", "radio") and "checked" not in a:
                    return
                if kind == "submit" and a["name"] != "accept":
                    return
                self.forms[-1]["fields"][a["name"]] = a.get("value") or ""


    url = issuer + "/device"
    page = opener.open(url).read().decode()
    for step in range(8):
        parser = Forms()
        parser.feed(page)
        chosen = None
        for form in parser.forms:
            fields = form["fields"]
            if "password" in fields:
                fields["username"] = username
                fields["password"] = password
            elif any("user_code" in name for name in fields):
                for name in list(fields):
                    if "user_code" in name:
                        fields[name] = user_code
            elif "accept" in fields:
                fields["accept"] = "Yes"
            else:
                continue
            chosen = form
            break
        if chosen is None:
            break
        print(f"step {step}: submitting {sorted(chosen['fields'])}", file=sys.stderr)
        target = urllib.parse.urljoin(url, chosen["action"])
        response = opener.open(target, urllib.parse.urlencode(chosen["fields"]).encode())
        url, page = response.geturl(), response.read().decode()
    else:
        print(page)
        sys.exit("the device was not approved: the provider keeps asking")

    print(page)
  '';
in
{
  inherit
    issuer
    certs
    user
    serviceAccount
    approveDevice
    ;

  # The client's Nix daemon: the test cache as its only substituter, trusted from boot; no
  # remembered "absent" answers, since the test asks before and after logging in.
  daemonNixSettings = {
    substituters = lib.mkForce [ "https://cache.test" ];
    trusted-public-keys = [ cacheKey.public ];
    narinfo-cache-negative-ttl = 0;
  };

  # Host names as the other nodes see them.
  hostsFor = serverAddress: "${serverAddress} idp.test cache.test";

  caFile = "${certs}/ca.crt";

  serverNode =
    { pkgs, ... }:
    {
      virtualisation.memorySize = 2048;
      virtualisation.cores = 2;

      networking.extraHosts = "127.0.0.1 idp.test cache.test";
      networking.firewall.allowedTCPPorts = [
        443
        8443
      ];
      security.pki.certificateFiles = [ "${certs}/ca.crt" ];
      environment.systemPackages = [ pkgs.curl ];

      services.keycloak = {
        enable = true;
        sslCertificate = "${certs}/server.crt";
        sslCertificateKey = "${certs}/server.key";
        database.passwordFile = "${pkgs.writeText "keycloak-db-password" "keycloak-test-db-password"}";
        realmFiles = [ realmFile ];
        settings = {
          hostname = "https://idp.test:8443";
          https-port = 8443;
        };
      };

      systemd.services.cache-gate = {
        description = "Token check for the test binary cache";
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = "${pkgs.python3.interpreter} ${gate}";
          DynamicUser = true;
        };
      };

      systemd.tmpfiles.rules = [ "d /srv/cache 0755 root root -" ];

      services.nginx = {
        enable = true;
        virtualHosts."cache.test" = {
          onlySSL = true;
          sslCertificate = "${certs}/server.crt";
          sslCertificateKey = "${certs}/server.key";
          root = "/srv/cache";
          locations."/".extraConfig = ''
            auth_request /_auth;
          '';
          locations."= /_auth" = {
            proxyPass = "http://127.0.0.1:9000";
            extraConfig = ''
              internal;
              proxy_pass_request_body off;
              proxy_set_header Content-Length "";
              proxy_set_header X-Original-URI $request_uri;
            '';
          };
        };
      };
    };

  # Python for the test scripts: waits for the server, fills the cache with one signed path
  # made at run time (so that no node has it yet) and defines `payload`, `public_key`.
  prepareServer = ''
    import shlex

    server.wait_for_unit("keycloak.service")
    server.wait_until_succeeds(
        "curl -sSf ${issuer}/.well-known/openid-configuration", timeout=600
    )
    server.wait_for_unit("cache-gate.service")
    server.wait_for_unit("nginx.service")

    with subtest("the cache holds a signed path and refuses requests without a token"):
        payload = server.succeed(
            "echo 'served through nix-cache-login' > /root/payload"
            " && nix-store --add /root/payload"
        ).strip()
        server.succeed(
            "nix --extra-experimental-features nix-command copy"
            f" --to 'file:///srv/cache?secret-key=${cacheKey.secretFile}' {payload}"
        )
        public_key = "${cacheKey.public}"
        server.succeed(
            "test \"$(curl -s -o /dev/null -w '%{http_code}' https://cache.test/nix-cache-info)\" = 401"
        )


    def substitute(netrc=None):
        """A nix-store command that fetches `payload` from the test cache only, for root
        on its local store (the options are ignored for an untrusted daemon client)."""
        command = (
            f"nix-store --realise {payload}"
            " --option substituters https://cache.test"
            f" --option trusted-public-keys {shlex.quote(public_key)}"
            " --option narinfo-cache-negative-ttl 0"
        )
        if netrc:
            command += f" --option netrc-file {netrc}"
        return command
  '';
}
