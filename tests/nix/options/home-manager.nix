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
  inherit (import ./declare.nix { inherit lib; })
    opt
    required
    nullable
    bool
    str
    lines
    strList
    submodules
    ;

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
      Description = nullable types.str;
      Documentation = opt (types.coercedTo types.str lib.toList (types.listOf types.str)) [ ];
    };
  };
  unitType = types.attrsOf (types.submodule unitBase);
  serviceType = types.attrsOf (
    types.submodule {
      imports = [ unitBase ];
      options.Service = {
        Environment = opt (types.coercedTo types.str lib.toList (types.listOf types.str)) [ ];
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
    Label = nullable types.str;
    Disabled = nullable types.bool;
    Program = nullable types.path;
    ProgramArguments = nullable (types.listOf types.str);
    EnvironmentVariables = nullable (types.attrsOf types.str);
    WorkingDirectory = nullable types.str;
    KeepAlive = nullable (types.either types.bool (types.attrsOf types.anything));
    RunAtLoad = nullable types.bool;
    StartInterval = nullable types.int;
    StartCalendarInterval = nullable (types.listOf (types.attrsOf types.int));
    StandardInPath = nullable types.path;
    StandardOutPath = nullable types.path;
    StandardErrorPath = nullable types.path;
    ProcessType = nullable (
      types.enum [
        "Background"
        "Standard"
        "Adaptive"
        "Interactive"
      ]
    );
    LowPriorityIO = nullable types.bool;
    Nice = nullable types.int;
    ThrottleInterval = nullable types.int;
  };

  # --- modules/lib/file-type.nix ------------------------------------------------------
  fileType = types.attrsOf (
    types.submodule (
      { name, config, ... }:
      {
        options = {
          enable = bool true;
          target = str name;
          text = nullable types.lines;
          source = required types.path;
          executable = nullable types.bool;
          recursive = bool false;
          onChange = lines;
          force = bool false;
        };
        config.source = lib.mkIf (config.text != null) (
          lib.mkDefault (pkgs.writeText "hm_${lib.replaceStrings [ "/" ] [ "-" ] name}" config.text)
        );
      }
    )
  );

  # modules/launchd/default.nix: launchd.agents.<name>
  agent = {
    options = {
      enable = bool false;
      config = opt (types.submodule { options = launchdConfig; }) { };
    };
  };
in
{
  # --- modules/misc/assertions.nix (NixOS declares them alike) ------------------------
  imports = [ ./assertions.nix ];

  options = {
    # --- modules/home-environment.nix, modules/files.nix -----------------------------
    home.username = required types.str;
    home.homeDirectory = required types.path;
    home.packages = opt (types.listOf types.package) [ ];
    home.file = opt fileType { };

    # --- modules/misc/xdg.nix --------------------------------------------------------
    xdg.enable = lib.mkEnableOption "management of XDG base directories";
    xdg.configHome = opt types.path "${config.home.homeDirectory}/.config";
    xdg.stateHome = opt types.path "${config.home.homeDirectory}/.local/state";
    xdg.cacheHome = opt types.path "${config.home.homeDirectory}/.cache";
    xdg.dataHome = opt types.path "${config.home.homeDirectory}/.local/share";
    xdg.configFile = opt fileType { };

    # --- modules/systemd.nix ---------------------------------------------------------
    systemd.user.services = opt serviceType { };
    systemd.user.timers = opt unitType { };
    systemd.user.sockets = opt unitType { };

    # --- modules/launchd/default.nix -------------------------------------------------
    launchd.agents = submodules agent;
  };
}
