# NixOS VM test of the server module (nixos-module-server.nix): a CI machine gets a
# service-account token from Keycloak with its timer's service, and its Nix (reading the
# default netrc-file, /etc/nix/netrc) substitutes a path from a cache that demands the token.
#
# Run from the flake: `nix build .#checks.x86_64-linux.vm-server` (needs KVM).
{ pkgs, lib, ... }:

let
  common = import ./tests/nix/vm-common.nix { inherit pkgs lib; };
in
{
  name = "nix-cache-login-server";

  nodes = {
    server = common.serverNode;

    ci =
      { nodes, ... }:
      {
        imports = [ ./nixos-module-server.nix ];

        networking.extraHosts = common.hostsFor nodes.server.networking.primaryIPAddress;
        security.pki.certificateFiles = [ common.caFile ];

        # The secret as a deployment tool would leave it: a root-only file outside the store.
        environment.etc."nix-cache-login-test/client-secret" = {
          text = common.serviceAccount.secret;
          mode = "0400";
        };

        services.nix-cache-login-server = {
          enable = true;
          clientSecretFile = "/etc/nix-cache-login-test/client-secret";
          settings = {
            inherit (common) issuer;
            client_id = common.serviceAccount.clientId;
            cache_host = "cache.test";
          };
        };
      };
  };

  testScript = ''
    start_all()
    ${common.prepareServer}

    ci.wait_for_unit("multi-user.target")

    with subtest("the module installs the config, the timer and the netrc placeholder"):
        ci.wait_for_unit("nix-cache-login-server.timer")
        ci.succeed("test -f /etc/nix/netrc")
        ci.succeed("test \"$(stat -c %a /etc/nix/netrc)\" = 600")
        ci.succeed("grep -F '$CREDENTIALS_DIRECTORY/client-secret' /etc/nix-cache-login/config.toml")
        ci.fail("grep -F '${common.serviceAccount.secret}' /etc/nix-cache-login/config.toml")

    with subtest("the service fetches a service-account token into /etc/nix/netrc"):
        # The timer's first run may have come before Keycloak was up; run it now.
        ci.succeed("systemctl start nix-cache-login-server.service")
        ci.succeed("grep -q 'machine cache.test' /etc/nix/netrc")
        ci.succeed("test \"$(stat -c %a /etc/nix/netrc)\" = 600")
        ci.succeed("test -d /var/lib/nix-cache-login")
        ci.succeed("test \"$(stat -c %a /var/lib/nix-cache-login)\" = 700")

    with subtest("Nix substitutes through the cache with the default netrc-file"):
        ci.succeed(substitute())
        ci.succeed(f"grep -q 'served through nix-cache-login' {payload}")
        server.succeed(
            "journalctl -u cache-gate.service"
            " | grep -q 'accepted service-account-${common.serviceAccount.clientId}'"
        )

    with subtest("a second run keeps the still valid token and succeeds"):
        ci.succeed("systemctl start nix-cache-login-server.service")
        ci.succeed("grep -q 'machine cache.test' /etc/nix/netrc")

    with subtest("the unit is sandboxed"):
        print(ci.succeed("systemd-analyze security nix-cache-login-server.service || true"))
        ci.succeed(
            "systemctl show -p ProtectSystem --value nix-cache-login-server.service | grep -qx strict"
        )
  '';
}
