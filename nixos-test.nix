# NixOS VM test of the workstation module (nixos-module.nix): a person logs in with the
# device flow, and Nix substitutes a path from a binary cache that demands the token.
#
# Run from the flake: `nix build .#checks.x86_64-linux.vm-workstation` (needs KVM). The
# flake evaluates it with `pkgs.testers.runNixOSTest` on a nixpkgs with this flake's overlay,
# so `pkgs.nix-cache-login` is the package under test.
{ pkgs, lib, ... }:

let
  common = import ./tests/nix/vm-common.nix { inherit pkgs lib; };
  home = "/home/${common.user.name}";
  netrc = "${home}/.config/nix/netrc";
in
{
  name = "nix-cache-login-workstation";

  nodes = {
    server = common.serverNode;

    client =
      { nodes, pkgs, ... }:
      {
        imports = [ ./nixos-module.nix ];

        networking.extraHosts = common.hostsFor nodes.server.networking.primaryIPAddress;
        security.pki.certificateFiles = [ common.caFile ];

        users.users.${common.user.name} = {
          isNormalUser = true;
          uid = 1000;
          # A user manager runs without a login session, so the user timer exists.
          linger = true;
        };

        environment.systemPackages = [
          pkgs.curl
          common.approveDevice
        ];

        programs.nix-cache-login = {
          enable = true;
          settings = {
            inherit (common) issuer;
            client_id = "nix-cache-login";
            cache_host = "cache.test";
            callback_port = 18080;
          };
          netrcPlaceholder.enable = true;
        };
      };
  };

  testScript =
    { nodes, ... }:
    let
      package = nodes.client.programs.nix-cache-login.package;
    in
    ''
      import re

      start_all()
      ${common.prepareServer}

      def as_alice(command):
          return "su - ${common.user.name} -c " + shlex.quote(command)


      def user_unit(verb):
          return as_alice(
              "XDG_RUNTIME_DIR=/run/user/$(id -u) systemctl --user "
              + verb
              + " nix-cache-login-refresh.service"
          )


      client.wait_for_unit("multi-user.target")

      with subtest("the package carries its man page and completions"):
          client.succeed("test -e ${package}/share/man/man1/nix-cache-login.1.gz")
          client.succeed("test -e ${package}/share/bash-completion/completions/nix-cache-login.bash")
          client.succeed("test -e ${package}/share/zsh/site-functions/_nix-cache-login")
          client.succeed("test -e ${package}/share/fish/vendor_completions.d/nix-cache-login.fish")

      with subtest("the module writes the system-wide config and the netrc placeholder"):
          client.succeed("grep -F '${common.issuer}' /etc/nix-cache-login/config.toml")
          client.succeed("test -f /etc/nix/netrc")
          client.succeed("test \"$(stat -c %a /etc/nix/netrc)\" = 600")

      with subtest("without a login the cache refuses the path"):
          client.fail(substitute("${netrc}"))

      with subtest("the refresh unit does not fail before the first login (exit 3)"):
          client.wait_for_unit("user@1000.service")
          client.wait_until_succeeds(
              as_alice(
                  "XDG_RUNTIME_DIR=/run/user/$(id -u)"
                  " systemctl --user is-active nix-cache-login-refresh.timer"
              )
          )
          client.succeed(user_unit("start"))
          client.succeed(
              "test \"$(" + user_unit("show -p Result --value") + ")\" = success"
          )

      with subtest("device login, approved through Keycloak's device page"):
          client.succeed(
              as_alice("nix-cache-login login --device > login.log 2>&1; echo $? > login.rc")
              + " >/dev/null 2>&1 &"
          )
          log = client.wait_until_succeeds(
              "grep -E '[A-Z0-9]{4}-[A-Z0-9]{4}' ${home}/login.log", timeout=120
          )
          found = re.search(r"user_code=([A-Z0-9]{4}-[A-Z0-9]{4})", log) or re.search(
              r"\b([A-Z0-9]{4}-[A-Z0-9]{4})\b", log
          )
          assert found, f"no user code in the login output: {log!r}"
          client.succeed(
              "approve-device ${common.issuer} "
              + found.group(1)
              + " ${common.user.name} ${common.user.password}"
          )
          client.wait_until_succeeds("test -s ${home}/login.rc", timeout=120)
          print(client.succeed("cat ${home}/login.log"))
          client.succeed("test \"$(cat ${home}/login.rc)\" = 0")

      with subtest("the token is in the user's netrc, readable by the user only"):
          client.succeed("grep -q 'machine cache.test' ${netrc}")
          client.succeed("test \"$(stat -c %a ${netrc})\" = 600")
          client.succeed("test \"$(stat -c %U ${netrc})\" = ${common.user.name}")
          client.succeed(as_alice("nix-cache-login status"))
          # For the log only: what the tool's own diagnosis says on this machine.
          print(client.execute(as_alice("nix-cache-login doctor 2>&1"))[1])

      with subtest("Nix substitutes the path through the authenticated cache"):
          client.succeed(substitute("${netrc}"))
          client.succeed(f"grep -q 'served through nix-cache-login' {payload}")
          server.succeed("journalctl -u cache-gate.service | grep -q 'accepted ${common.user.name}'")

      with subtest("the refresh unit succeeds with a session"):
          client.succeed(user_unit("start"))
          client.succeed(
              "test \"$(" + user_unit("show -p Result --value") + ")\" = success"
          )
          client.succeed("grep -q 'machine cache.test' ${netrc}")

      with subtest("logout removes the token"):
          client.succeed(as_alice("nix-cache-login logout"))
          client.fail("grep -q 'machine cache.test' ${netrc}")
          client.fail(as_alice("nix-cache-login status"))
    '';
}
