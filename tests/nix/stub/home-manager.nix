# The home-manager options that home-module.nix touches, declared as in home-manager
# (modules/misc/assertions.nix, home-environment.nix, misc/xdg.nix, files.nix,
# systemd.nix, launchd/default.nix and launchd/launchd.nix). Unit sections are free-form as
# in home-manager (`<name>.<Section>.<Key>`); launchd agent keys are typed options there,
# so a misspelt key fails here too.
{ config, lib, ... }:

let
  inherit (lib) mkOption types;

  # home-manager's systemd.nix: attrsOf (attrsOf (attrsOf (either primitive (listOf primitive))))
  primitive = types.oneOf [
    types.bool
    types.int
    types.str
  ];
  unitType = types.attrsOf (
    types.attrsOf (types.attrsOf (types.either primitive (types.listOf primitive)))
  );

  nullOr = t: mkOption {
    type = types.nullOr t;
    default = null;
  };

  launchdConfig = {
    Label = nullOr types.str;
    Disabled = nullOr types.bool;
    Program = nullOr types.path;
    ProgramArguments = nullOr (types.listOf types.str);
    EnvironmentVariables = nullOr (types.attrsOf types.str);
    WorkingDirectory = nullOr types.str;
    KeepAlive = nullOr (types.either types.bool (types.attrsOf types.anything));
    RunAtLoad = nullOr types.bool;
    StartInterval = nullOr types.int;
    StartCalendarInterval = nullOr (types.listOf (types.attrsOf types.int));
    StandardInPath = nullOr types.path;
    StandardOutPath = nullOr types.path;
    StandardErrorPath = nullOr types.path;
    ProcessType = nullOr (
      types.enum [
        "Background"
        "Standard"
        "Adaptive"
        "Interactive"
      ]
    );
    LowPriorityIO = nullOr types.bool;
    Nice = nullOr types.int;
    ThrottleInterval = nullOr types.int;
  };

  fileType = types.attrsOf (
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
          text = nullOr types.lines;
          # home-manager derives it from `text`; null stands for that here.
          source = nullOr types.path;
          executable = nullOr types.bool;
          recursive = mkOption {
            type = types.bool;
            default = false;
          };
          onChange = mkOption {
            type = types.lines;
            default = "";
          };
          force = mkOption {
            type = types.bool;
            default = false;
          };
        };
      }
    )
  );
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

    home.username = mkOption { type = types.str; };
    home.homeDirectory = mkOption { type = types.path; };
    home.packages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    home.file = mkOption {
      type = fileType;
      default = { };
    };

    xdg.enable = mkOption {
      type = types.bool;
      default = false;
    };
    xdg.configHome = mkOption {
      type = types.path;
      default = "${config.home.homeDirectory}/.config";
    };
    xdg.stateHome = mkOption {
      type = types.path;
      default = "${config.home.homeDirectory}/.local/state";
    };
    xdg.cacheHome = mkOption {
      type = types.path;
      default = "${config.home.homeDirectory}/.cache";
    };
    xdg.configFile = mkOption {
      type = fileType;
      default = { };
    };

    systemd.user.services = mkOption {
      type = unitType;
      default = { };
    };
    systemd.user.timers = mkOption {
      type = unitType;
      default = { };
    };

    launchd.agents = mkOption {
      type = types.attrsOf (
        types.submodule {
          options = {
            enable = mkOption {
              type = types.bool;
              default = false;
            };
            config = mkOption {
              type = types.submodule { options = launchdConfig; };
              default = { };
            };
          };
        }
      );
      default = { };
    };
  };
}
