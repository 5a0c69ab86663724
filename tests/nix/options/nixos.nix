# The NixOS options that this repository's modules and VM test nodes touch, declared with
# nixpkgs' own lib (types, mkOption, mkIf, ...) the way NixOS 25.11 declares them. Which
# nixpkgs file each block mirrors is in tests/nix/README.md and above each block.
#
# Only what our Nix files set or read is here, with NixOS's types, defaults and merge rules:
# a module that sets an option NixOS does not have, or gives a value NixOS would refuse,
# fails here too. Descriptions are left out (they are NixOS's business).
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

  # --- nixos/lib/systemd-lib.nix -------------------------------------------------------
  # Unit names as NixOS accepts them in wantedBy, after, ...
  unitNameType = types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";
  unitList = opt (types.listOf unitNameType) [ ];

  # --- nixos/lib/systemd-unit-options.nix: unitOption -----------------------------------
  # One value per key (equal definitions may repeat), or lists that concatenate; a mix is
  # refused. Values are what systemd's INI can hold.
  unitOption = types.mkOptionType {
    name = "systemd option";
    check =
      v:
      let
        atom = a: builtins.isBool a || builtins.isInt a || lib.isStringLike a || builtins.isFloat a;
      in
      atom v || (builtins.isList v && builtins.all atom v);
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if builtins.isList (builtins.head defs').value then
        lib.concatMap (
          def:
          if builtins.isList def.value then
            def.value
          else
            throw "The definitions for systemd unit options should be either all lists, representing repeatable options, or all non-lists, but for the option ${lib.showOption loc}, the definitions are a mix of list and non-list"
        ) defs'
      else
        lib.mergeEqualOption loc defs';
  };
  unitSection = opt (types.attrsOf unitOption) { };

  # systemd-unit-options.nix checkService: the values of Type= and Restart= systemd knows.
  checkService =
    attrs:
    let
      # A definition's values may still carry mkIf / mkOverride markers here.
      plain = v: if builtins.elem (v._type or "") [ "if" "override" ] then v.content else v;
      oneOf = name: allowed: !(attrs ? ${name}) || builtins.elem (plain attrs.${name}) allowed;
    in
    oneOf "Type" [
      "exec"
      "simple"
      "forking"
      "oneshot"
      "dbus"
      "notify"
      "notify-reload"
      "idle"
    ]
    && oneOf "Restart" [
      "no"
      "on-success"
      "on-failure"
      "on-abnormal"
      "on-abort"
      "on-watchdog"
      "always"
    ];

  # The [Unit] keys systemd-lib.nix's unitConfig makes of the list options.
  listKeys = {
    requires = "Requires";
    wants = "Wants";
    upholds = "Upholds";
    after = "After";
    before = "Before";
    bindsTo = "BindsTo";
    partOf = "PartOf";
    conflicts = "Conflicts";
    requisite = "Requisite";
    onFailure = "OnFailure";
    onSuccess = "OnSuccess";
  };

  # systemd-unit-options.nix commonUnitOptions + stage2CommonUnitOptions, and
  # systemd-lib.nix unitConfig, which turns the list options into [Unit] keys.
  commonUnit =
    { config, options, ... }:
    {
      options = lib.mapAttrs (_: _: unitList) listKeys // {
        enable = bool true;
        description = opt types.singleLineStr "";
        documentation = strList;
        wantedBy = unitList;
        requiredBy = unitList;
        upheldBy = unitList;
        aliases = unitList;
        unitConfig = unitSection;
        # No default, as in NixOS: reading them undefined is an error.
        startLimitBurst = required types.int;
        startLimitIntervalSec = required types.int;
        restartTriggers = opt (types.listOf types.unspecified) [ ];
        reloadTriggers = opt (types.listOf unitOption) [ ];
      };
      config.unitConfig =
        lib.concatMapAttrs (
          option: key: lib.optionalAttrs (config.${option} != [ ]) { ${key} = toString config.${option}; }
        ) listKeys
        // lib.optionalAttrs (config.documentation != [ ]) {
          Documentation = toString config.documentation;
        }
        // lib.optionalAttrs (config.description != "") { Description = config.description; }
        // lib.optionalAttrs options.startLimitBurst.isDefined {
          StartLimitBurst = toString config.startLimitBurst;
        }
        // lib.optionalAttrs options.startLimitIntervalSec.isDefined {
          StartLimitIntervalSec = toString config.startLimitIntervalSec;
        };
    };

  # systemd-unit-options.nix serviceOptions + stage2ServiceOptions.
  serviceUnit = {
    imports = [ commonUnit ];
    options = {
      environment = opt (types.attrsOf (
        types.nullOr (
          types.oneOf [
            types.str
            types.path
            types.package
          ]
        )
      )) { };
      path = opt (types.listOf (
        types.oneOf [
          types.package
          types.str
        ]
      )) [ ];
      serviceConfig = opt (types.addCheck (types.attrsOf unitOption) checkService) { };
      script = lines;
      scriptArgs = str "";
      preStart = lines;
      postStart = lines;
      preStop = lines;
      postStop = lines;
      restartIfChanged = bool true;
      reloadIfChanged = bool false;
      stopIfChanged = bool true;
      startAt = mkOption {
        type = types.either types.str (types.listOf types.str);
        default = [ ];
        apply = lib.toList;
      };
    };
  };

  # systemd-unit-options.nix socketOptions.
  socketUnit = {
    imports = [ commonUnit ];
    options = {
      listenStreams = strList;
      listenDatagrams = strList;
      socketConfig = unitSection;
    };
  };

  # systemd-unit-options.nix timerOptions.
  timerUnit = {
    imports = [ commonUnit ];
    options.timerConfig = unitSection;
  };

  # tmpfiles.nix: systemd.tmpfiles.settings.<file>.<path>.<type>
  tmpfilesEntry =
    { name, ... }:
    {
      options = {
        type = str name;
        mode = str "-";
        user = str "-";
        group = str "-";
        age = str "-";
        argument = str "";
      };
    };

  # etc.nix: environment.etc.<name>
  etcEntry =
    {
      name,
      config,
      options,
      ...
    }:
    {
      options = {
        enable = bool true;
        target = str name;
        text = nullable types.lines;
        source = required types.path;
        mode = str "symlink";
        uid = opt types.int 0;
        gid = opt types.int 0;
        user = str "+${toString config.uid}";
        group = str "+${toString config.gid}";
      };
      config.source = lib.mkIf (config.text != null) (
        lib.mkDerivedConfig options.text (pkgs.writeText "etc-${lib.replaceStrings [ "/" ] [ "-" ] name}")
      );
    };

  # users-groups.nix: users.users.<name>, users.groups.<name>
  user =
    { name, ... }:
    {
      options = {
        name = str name;
        uid = nullable types.int;
        isNormalUser = bool false;
        isSystemUser = bool false;
        group = str "";
        extraGroups = strList;
        description = str "";
        home = str "/var/empty";
        createHome = bool false;
        linger = nullable types.bool;
        password = nullable types.str;
        initialPassword = nullable types.str;
      };
    };
  group =
    { name, ... }:
    {
      options = {
        name = str name;
        gid = nullable types.int;
        members = strList;
      };
    };

  # nginx/vhost-options.nix and location-options.nix (what the VM test sets)
  nginxLocation = {
    options = {
      proxyPass = nullable types.str;
      root = nullable types.path;
      return = nullable (
        types.oneOf [
          types.str
          types.int
        ]
      );
      extraConfig = lines;
    };
  };
  nginxVirtualHost = {
    options = {
      onlySSL = bool false;
      forceSSL = bool false;
      sslCertificate = required types.path;
      sslCertificateKey = required types.path;
      root = nullable types.path;
      extraConfig = lines;
      locations = submodules nginxLocation;
    };
  };
in
{
  # --- nixos/modules/misc/assertions.nix (home-manager declares them alike) ------------
  imports = [ ./assertions.nix ];

  options = {
    # --- nixos/modules/config/system-path.nix ------------------------------------------
    environment.systemPackages = opt (types.listOf types.package) [ ];

    # --- nixos/modules/system/etc/etc.nix ----------------------------------------------
    environment.etc = submodules etcEntry;

    # --- nixos/modules/system/boot/systemd.nix, systemd/user.nix -----------------------
    systemd = {
      services = submodules serviceUnit;
      sockets = submodules socketUnit;
      timers = submodules timerUnit;
      packages = opt (types.listOf types.package) [ ];
      user = {
        services = submodules serviceUnit;
        sockets = submodules socketUnit;
        timers = submodules timerUnit;
      };

      # --- nixos/modules/system/boot/systemd/tmpfiles.nix ------------------------------
      tmpfiles.rules = strList;
      tmpfiles.settings = opt (types.attrsOf (types.attrsOf (types.attrsOf (types.submodule tmpfilesEntry)))) { };
    };

    # --- nixos/modules/config/nix.nix (nix.settings) ----------------------------------
    nix.settings = opt (types.submodule {
      freeformType =
        let
          atom = types.nullOr (
            types.oneOf [
              types.bool
              types.int
              types.float
              types.str
              types.path
              types.package
            ]
          );
        in
        types.attrsOf (types.either atom (types.listOf atom));
      options = {
        substituters = strList;
        trusted-substituters = strList;
        trusted-public-keys = strList;
        trusted-users = opt (types.listOf types.str) [ "root" ];
        allowed-users = opt (types.listOf types.str) [ "*" ];
        system-features = strList;
        extra-sandbox-paths = strList;
      };
    }) { };
    nix.extraOptions = lines;

    # --- nixos/modules/config/users-groups.nix ----------------------------------------
    users.users = submodules user;
    users.groups = submodules group;

    # --- nixos/modules/security/ca.nix -------------------------------------------------
    security.pki.certificateFiles = opt (types.listOf types.path) [ ];

    # --- nixos/modules/config/networking.nix, services/networking/firewall.nix ---------
    networking.extraHosts = lines;
    networking.firewall.allowedTCPPorts = opt (types.listOf types.port) [ ];

    # --- nixos/modules/virtualisation/qemu-vm.nix --------------------------------------
    virtualisation.memorySize = opt types.ints.positive 1024;
    virtualisation.cores = opt types.ints.positive 1;

    # --- nixos/modules/services/web-apps/keycloak.nix (what the VM test sets) ---------
    services.keycloak = {
      enable = lib.mkEnableOption "Keycloak";
      sslCertificate = nullable types.path;
      sslCertificateKey = nullable types.path;
      database.passwordFile = required types.path;
      realmFiles = opt (types.listOf types.path) [ ];
      settings = opt (types.submodule {
        freeformType = types.attrsOf (
          types.nullOr (
            types.oneOf [
              types.str
              types.int
              types.bool
              (types.attrsOf types.path)
            ]
          )
        );
        options = {
          hostname = nullable types.str;
          http-port = opt types.port 80;
          https-port = opt types.port 443;
        };
      }) { };
    };

    # --- nixos/modules/services/web-servers/nginx/default.nix (what the VM test sets) --
    services.nginx = {
      enable = lib.mkEnableOption "Nginx Web Server";
      virtualHosts = submodules nginxVirtualHost;
    };
  };

  # nix.nix: NixOS's own substituter, after anything a module sets.
  config.nix.settings.substituters = lib.mkAfter [ "https://cache.nixos.org/" ];
}
