# NixOS VM test of the workstation module (nixos-module.nix) with the daemon bridge: a
# normal, untrusted user logs in with the device flow, and the Nix daemon substitutes a path
# for her from a binary cache that demands the token, as on any multi-user machine.
#
# Run from the flake: `nix build .#checks.x86_64-linux.vm-workstation` (needs KVM). The
# flake evaluates it with `pkgs.testers.runNixOSTest` on a nixpkgs with this flake's overlay,
# so `pkgs.nix-cache-login` is the package under test.
{ pkgs, lib, ... }:

let
  common = import ./tests/nix/vm-common.nix { inherit pkgs lib; };
  home = "/home/${common.user.name}";
  netrc = "${home}/.config/nix/netrc";
  daemonNetrc = "/etc/nix/netrc";
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

        # The daemon's own settings; alice is not in trusted-users (NixOS's default: root).
        nix.settings = common.daemonNixSettings;

        programs.nix-cache-login = {
          enable = true;
          # No callback_port: Keycloak takes any port for http://127.0.0.1/callback.
          settings = {
            inherit (common) issuer;
            client_id = "nix-cache-login";
            cache_host = "cache.test";
          };
          # Issuer, client and host come from `settings`; `users` and `wheel` may use it.
          daemonBridge.enable = true;
          # The bridge asks for the same placeholder: one tmpfiles rule for both.
          netrcPlaceholder.enable = true;
        };
      };
  };

  testScript =
    { nodes, ... }:
    let
      package = nodes.client.programs.nix-cache-login.package;
      units = "${package}/share/systemd/system";
    in
    ''
      import json
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


      # What a user types: no options, the daemon decides where to substitute from.
      realise = f"nix-store --realise {payload}"

      client.wait_for_unit("multi-user.target")

      with subtest("the package carries its man page, completions and the bridge's units"):
          client.succeed("test -e ${package}/share/man/man1/nix-cache-login.1.gz")
          client.succeed("test -e ${package}/share/bash-completion/completions/nix-cache-login.bash")
          client.succeed("test -e ${package}/share/zsh/site-functions/_nix-cache-login")
          client.succeed("test -e ${package}/share/fish/vendor_completions.d/nix-cache-login.fish")
          client.succeed("grep -qx 'ListenStream=/run/nix-cache-login/bridge.sock' ${units}/nix-cache-login-bridge.socket")
          client.succeed(
              "grep -qx 'ExecStart=${package}/bin/nix-cache-login bridge serve'"
              " ${units}/nix-cache-login-bridge.service"
          )

      with subtest("the module writes both configs, the daemon's netrc and its netrc-file"):
          client.succeed("grep -F '${common.issuer}' /etc/nix-cache-login/config.toml")
          client.succeed("grep -F '/run/nix-cache-login/bridge.sock' /etc/nix-cache-login/config.toml")
          client.succeed("grep -F 'cache.test' /etc/nix-cache-login/bridge.toml")
          client.succeed("test \"$(stat -c '%a %U' /etc/nix-cache-login/bridge.toml)\" = '644 root'")
          client.succeed("test \"$(stat -c '%a %U' ${daemonNetrc})\" = '600 root'")
          client.succeed("grep -qx 'netrc-file = ${daemonNetrc}' /etc/nix/nix.conf")
          client.wait_for_unit("nix-cache-login-bridge.socket")
          client.succeed("test -S /run/nix-cache-login/bridge.sock")

      with subtest("alice is an untrusted client of the daemon, and it refuses her the path"):
          info = json.loads(
              client.succeed(as_alice("nix --extra-experimental-features nix-command store info --json"))
          )
          assert not info.get("trusted"), f"alice must not be trusted: {info}"
          client.succeed("grep -qx 'trusted-users = root' /etc/nix/nix.conf")
          client.fail(as_alice(realise))

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

      with subtest("the token is in alice's netrc and, through the bridge, in the daemon's"):
          client.succeed("grep -q 'machine cache.test' ${netrc}")
          client.succeed("test \"$(stat -c '%a %U' ${netrc})\" = '600 ${common.user.name}'")
          client.succeed("grep -q 'machine cache.test' ${daemonNetrc}")
          client.succeed("test \"$(stat -c '%a %U' ${daemonNetrc})\" = '600 root'")
          client.fail(as_alice("cat ${daemonNetrc}"))
          client.succeed("journalctl -u nix-cache-login-bridge.service | grep -q cache.test")
          print(client.succeed(as_alice("nix-cache-login status")))
          # For the log only: what the tool's own diagnosis says on this machine.
          print(client.execute(as_alice("nix-cache-login doctor 2>&1"))[1])

      with subtest("the daemon substitutes the path for alice through the authenticated cache"):
          client.succeed(as_alice(realise))
          client.succeed(f"grep -q 'served through nix-cache-login' {payload}")
          server.succeed("journalctl -u cache-gate.service | grep -q 'accepted ${common.user.name}'")

      with subtest("the refresh unit succeeds with a session"):
          client.succeed(user_unit("start"))
          client.succeed(
              "test \"$(" + user_unit("show -p Result --value") + ")\" = success"
          )
          client.succeed("grep -q 'machine cache.test' ${netrc}")
          client.succeed("grep -q 'machine cache.test' ${daemonNetrc}")

      with subtest("logout takes the token out of both netrcs; the daemon is refused again"):
          client.succeed(as_alice("nix-cache-login logout"))
          client.fail("grep -q 'machine cache.test' ${netrc}")
          client.fail("grep -q 'machine cache.test' ${daemonNetrc}")
          client.fail(as_alice("nix-cache-login status"))
          client.succeed(f"nix-store --delete {payload}")
          client.fail(as_alice(realise))
    '';
}
