# The NixOS options that nixos-module.nix and nixos-module-server.nix touch, declared as in
# nixpkgs (nixos/modules/misc/assertions.nix, config/system-path.nix, system/etc/etc.nix,
# system/boot/systemd.nix, systemd/user.nix, systemd/tmpfiles.nix,
# lib/systemd-unit-options.nix, services/system/nix-daemon settings), with the types and
# defaults that matter for evaluation. Sub-options not listed here are missing on purpose:
# a module that sets one fails, which is the point of the check.
{ lib, ... }:

let
  inherit (lib) mkOption types;

  list = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };

  # The options shared by every unit kind (lib/systemd-unit-options.nix: commonUnitOptions).
  unitOptions = {
    enable = mkOption {
      type = types.bool;
      default = true;
    };
    description = mkOption {
      type = types.str;
      default = "";
    };
    documentation = list;
    requires = list;
    wants = list;
    upholds = list;
    after = list;
    before = list;
    bindsTo = list;
    partOf = list;
    conflicts = list;
    requisite = list;
    onFailure = list;
    onSuccess = list;
    wantedBy = list;
    requiredBy = list;
    upheldBy = list;
    unitConfig = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    restartTriggers = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    reloadTriggers = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    # No default in NixOS either; null here stands for "not set", so that a check can
    # force a whole unit.
    startLimitBurst = mkOption {
      type = types.nullOr types.int;
      default = null;
    };
    startLimitIntervalSec = mkOption {
      type = types.nullOr types.int;
      default = null;
    };
  };

  serviceOptions = unitOptions // {
    environment = mkOption {
      type = types.attrsOf (
        types.nullOr (
          types.oneOf [
            types.str
            types.path
            types.package
          ]
        )
      );
      default = { };
    };
    path = mkOption {
      type = types.listOf (types.either types.package types.str);
      default = [ ];
    };
    serviceConfig = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    script = mkOption {
      type = types.lines;
      default = "";
    };
    preStart = mkOption {
      type = types.lines;
      default = "";
    };
    postStart = mkOption {
      type = types.lines;
      default = "";
    };
    postStop = mkOption {
      type = types.lines;
      default = "";
    };
    restartIfChanged = mkOption {
      type = types.bool;
      default = true;
    };
    stopIfChanged = mkOption {
      type = types.bool;
      default = true;
    };
    startAt = mkOption {
      type = types.either types.str (types.listOf types.str);
      default = [ ];
    };
  };

  timerOptions = unitOptions // {
    timerConfig = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
  };

  services = mkOption {
    type = types.attrsOf (types.submodule { options = serviceOptions; });
    default = { };
  };
  timers = mkOption {
    type = types.attrsOf (types.submodule { options = timerOptions; });
    default = { };
  };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    environment.etc = mkOption {
      type = types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options = {
              enable = mkOption {
                type = types.bool;
                default = true;
              };
              target = mkOption {
                type = types.str;
                default = name;
              };
              text = mkOption {
                type = types.nullOr types.lines;
                default = null;
              };
              # NixOS derives it from `text`; null stands for that here.
              source = mkOption {
                type = types.nullOr types.path;
                default = null;
              };
              mode = mkOption {
                type = types.str;
                default = "symlink";
              };
              user = mkOption {
                type = types.str;
                default = "+0";
              };
              group = mkOption {
                type = types.str;
                default = "+0";
              };
            };
          }
        )
      );
      default = { };
    };

    systemd = {
      inherit services timers;
      user = {
        inherit services timers;
      };
      tmpfiles.rules = list;
    };

    nix.settings = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };

    users.users = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };

    # What the VM test nodes set besides the modules (nixos-test*.nix). Services that
    # are not ours are free-form: their options are nixpkgs' business.
    networking.extraHosts = mkOption {
      type = types.lines;
      default = "";
    };
    networking.firewall.allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
    };
    security.pki.certificateFiles = mkOption {
      type = types.listOf types.path;
      default = [ ];
    };
    virtualisation.memorySize = mkOption { type = types.int; };
    virtualisation.cores = mkOption { type = types.int; };
    services.keycloak = mkOption { type = types.attrsOf types.anything; };
    services.nginx = mkOption { type = types.attrsOf types.anything; };
  };
}
