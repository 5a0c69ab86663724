# What the modules share (home-module.nix, nixos-module.nix, nixos-module-server.nix): the
# options each one opens with and the TOML its config is written in; and, for the two NixOS
# modules, the sandbox of a root service that keeps a netrc, the rule for where that netrc
# may live, and the empty placeholder Lix and Determinate Nix need before the first token.
#
#   common = import ./nix/module-common.nix { inherit lib pkgs; };
#
# Imported by path, so a module keeps working when it is imported alone from a checkout
# (not through flake.nix).
{ lib, pkgs }:

let
  # The format of every config file the tool reads.
  settingsFormat = pkgs.formats.toml { };
in
{
  inherit settingsFormat;

  # `enable`, `package` and `settings`, which every module opens with. Only what the
  # module turns on (`enable`, the text after "Whether to enable"), the client in the
  # settings' example and where the settings are written (`settingsDescription`) differ.
  baseOptions =
    {
      enable,
      exampleClientId,
      settingsDescription,
    }:
    {
      enable = lib.mkEnableOption enable;

      package = lib.mkPackageOption pkgs "nix-cache-login" { };

      settings = lib.mkOption {
        type = settingsFormat.type;
        default = { };
        example = lib.literalExpression ''
          {
            issuer = "https://sso.example.com/realms/nix";
            client_id = "${exampleClientId}";
            cache_host = "cache.example.com";
          }
        '';
        description = settingsDescription;
      };
    };

  # systemd sandboxing for a service that talks HTTPS to the identity provider and writes
  # one netrc. The netrc writer replaces the file atomically and locks it, so it creates
  # NETRC.lock and .NETRC.tmp.* beside it: the whole directory must be writable, and
  # nothing else is. systemd/nix-cache-login-bridge.service carries the same settings for
  # systems without NixOS (tests/nix checks that the two agree).
  hardening = netrcPath: {
    UMask = "0077";
    ProtectSystem = "strict";
    ReadWritePaths = [ (dirOf netrcPath) ];
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    NoNewPrivileges = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    RestrictAddressFamilies = [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
    ];
    SystemCallFilter = [ "@system-service" ];
    SystemCallErrorNumber = "EPERM";
    SystemCallArchitectures = "native";
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    ProtectProc = "invisible";
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
  };

  # Where a root-owned netrc may live: the sandbox above hides /home, /root and /run/user
  # (ProtectHome) and the store is read-only, and a root-owned file in a user's directory
  # would be in that user's way.
  netrcPathAssertion = option: path: {
    assertion =
      lib.hasPrefix "/" path
      && !lib.any (dir: lib.hasPrefix dir path) [
        "/nix/store/"
        "/home/"
        "/root/"
        "/run/user/"
      ];
    message = "${option} must be an absolute path outside /nix/store, /home, /root and /run/user (it is root's file, kept by a sandboxed root service), not \"${path}\".";
  };

  # An empty root-owned 0600 netrc, created at boot when missing and never overwritten.
  # Keyed by path, so that two modules asking for the same file give one rule (a second
  # `systemd.tmpfiles.rules` line for the same path would be ignored by systemd-tmpfiles,
  # and a differing owner lost silently; here it is a conflict).
  netrcPlaceholder = path: {
    nix-cache-login.${path}.f = {
      mode = "0600";
      user = "root";
      group = "root";
    };
  };
}
