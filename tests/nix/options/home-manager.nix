# The home-manager options that home-module.nix touches, declared with nixpkgs' own lib
# the way home-manager (release-25.11) declares them. Which home-manager file each block
# mirrors is in tests/nix/README.md and above each block. Only what the module sets or
# reads is here; setting anything else fails, as it would in home-manager.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib) mkOption types;

  nullOr =
    type:
    mkOption {
      type = types.nullOr type;
      default = null;
    };

  # --- modules/systemd.nix: unitBaseType ----------------------------------------------
  # Sections and keys are free-form (`<unit>.<Section>.<Key>`); a few keys are typed.
  primitive = types.oneOf [
    types.bool
    types.int
    types.str
    types.path
  ];
  unitBase = {
    freeformType = types.attrsOf (types.attrsOf (types.either primitive (types.listOf primitive)));
    options.Unit = {
      Description = nullOr types.str;
      Documentation = mkOption {
        type = types.coercedTo types.str lib.toList (types.listOf types.str);
        default = [ ];
      };
    };
  };
  unitType = types.attrsOf (types.submodule unitBase);
  serviceType = types.attrsOf (
    types.submodule {
      imports = [ unitBase ];
      options.Service = {
        Environment = mkOption {
          type = types.coercedTo types.str lib.toList (types.listOf types.str);
          default = [ ];
        };
        ExecStart = mkOption {
          type =
            let
              one = types.either types.package types.str;
            in
            types.either one (types.listOf one);
          apply = lib.toList;
          default = [ ];
        };
      };
    }
  );

  # --- modules/launchd/launchd.nix (the keys of an agent's `config`) -------------------
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

  # --- modules/lib/file-type.nix ------------------------------------------------------
  fileType = types.attrsOf (
    types.submodule (
      { name, config, ... }:
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
          source = mkOption { type = types.path; };
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
        config.source = lib.mkIf (config.text != null) (
          lib.mkDefault (pkgs.writeText "hm_${lib.replaceStrings [ "/" ] [ "-" ] name}" config.text)
        );
      }
    )
  );
in
{
  options = {
    # --- modules/misc/assertions.nix -------------------------------------------------
    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      internal = true;
      default = [ ];
    };

    # --- modules/home-environment.nix, modules/files.nix -----------------------------
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

    # --- modules/misc/xdg.nix --------------------------------------------------------
    xdg.enable = lib.mkEnableOption "management of XDG base directories";
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
    xdg.dataHome = mkOption {
      type = types.path;
      default = "${config.home.homeDirectory}/.local/share";
    };
    xdg.configFile = mkOption {
      type = fileType;
      default = { };
    };

    # --- modules/systemd.nix ---------------------------------------------------------
    systemd.user.services = mkOption {
      type = serviceType;
      default = { };
    };
    systemd.user.timers = mkOption {
      type = unitType;
      default = { };
    };
    systemd.user.sockets = mkOption {
      type = unitType;
      default = { };
    };

    # --- modules/launchd/default.nix -------------------------------------------------
    launchd.agents = mkOption {
      default = { };
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
    };
  };
}
