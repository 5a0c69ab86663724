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

  strList = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };

  # --- nixos/lib/systemd-lib.nix -------------------------------------------------------
  # Unit names as NixOS accepts them in wantedBy, after, ...
  unitNameType = types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";
  unitList = mkOption {
    type = types.listOf unitNameType;
    default = [ ];
  };

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
  unitSection = mkOption {
    type = types.attrsOf unitOption;
    default = { };
  };

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

  # systemd-unit-options.nix commonUnitOptions + stage2CommonUnitOptions, and
  # systemd-lib.nix unitConfig, which turns the list options into [Unit] keys.
  commonUnit =
    { config, options, ... }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
        };
        description = mkOption {
          type = types.singleLineStr;
          default = "";
        };
        documentation = strList;
        requires = unitList;
        wants = unitList;
        upholds = unitList;
        after = unitList;
        before = unitList;
        bindsTo = unitList;
        partOf = unitList;
        conflicts = unitList;
        requisite = unitList;
        onFailure = unitList;
        onSuccess = unitList;
        wantedBy = unitList;
        requiredBy = unitList;
        upheldBy = unitList;
        aliases = unitList;
        unitConfig = unitSection;
        # No default, as in NixOS: reading them undefined is an error.
        startLimitBurst = mkOption { type = types.int; };
        startLimitIntervalSec = mkOption { type = types.int; };
        restartTriggers = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
        reloadTriggers = mkOption {
          type = types.listOf unitOption;
          default = [ ];
        };
      };
      config.unitConfig =
        let
          keyOf = option: key: lib.optionalAttrs (config.${option} != [ ]) { ${key} = toString config.${option}; };
        in
        keyOf "requires" "Requires"
        // keyOf "wants" "Wants"
        // keyOf "upholds" "Upholds"
        // keyOf "after" "After"
        // keyOf "before" "Before"
        // keyOf "bindsTo" "BindsTo"
        // keyOf "partOf" "PartOf"
        // keyOf "conflicts" "Conflicts"
        // keyOf "requisite" "Requisite"
        // keyOf "onFailure" "OnFailure"
        // keyOf "onSuccess" "OnSuccess"
        // keyOf "documentation" "Documentation"
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
        type = types.listOf (types.oneOf [
          types.package
          types.str
        ]);
        default = [ ];
      };
      serviceConfig = mkOption {
        type = types.addCheck (types.attrsOf unitOption) checkService;
        default = { };
      };
      script = mkOption {
        type = types.lines;
        default = "";
      };
      scriptArgs = mkOption {
        type = types.str;
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
      preStop = mkOption {
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
      reloadIfChanged = mkOption {
        type = types.bool;
        default = false;
      };
      stopIfChanged = mkOption {
        type = types.bool;
        default = true;
      };
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

  units =
    unit:
    mkOption {
      type = types.attrsOf (types.submodule unit);
      default = { };
    };
in
{
  options = {
    # --- nixos/modules/misc/assertions.nix ---------------------------------------------
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

    # --- nixos/modules/config/system-path.nix ------------------------------------------
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };

    # --- nixos/modules/system/etc/etc.nix ----------------------------------------------
    environment.etc = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule (
          {
            name,
            config,
            options,
            ...
          }:
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
              source = mkOption { type = types.path; };
              mode = mkOption {
                type = types.str;
                default = "symlink";
              };
              uid = mkOption {
                type = types.int;
                default = 0;
              };
              gid = mkOption {
                type = types.int;
                default = 0;
              };
              user = mkOption {
                type = types.str;
                default = "+${toString config.uid}";
              };
              group = mkOption {
                type = types.str;
                default = "+${toString config.gid}";
              };
            };
            config.source = lib.mkIf (config.text != null) (
              lib.mkDerivedConfig options.text (pkgs.writeText "etc-${lib.replaceStrings [ "/" ] [ "-" ] name}")
            );
          }
        )
      );
    };

    # --- nixos/modules/system/boot/systemd.nix, systemd/user.nix -----------------------
    systemd = {
      services = units serviceUnit;
      sockets = units socketUnit;
      timers = units timerUnit;
      packages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      user = {
        services = units serviceUnit;
        sockets = units socketUnit;
        timers = units timerUnit;
      };

      # --- nixos/modules/system/boot/systemd/tmpfiles.nix ------------------------------
      tmpfiles.rules = strList;
      tmpfiles.settings = mkOption {
        default = { };
        type = types.attrsOf (
          types.attrsOf (
            types.attrsOf (
              types.submodule (
                { name, ... }:
                {
                  options = {
                    type = mkOption {
                      type = types.str;
                      default = name;
                    };
                    mode = mkOption {
                      type = types.str;
                      default = "-";
                    };
                    user = mkOption {
                      type = types.str;
                      default = "-";
                    };
                    group = mkOption {
                      type = types.str;
                      default = "-";
                    };
                    age = mkOption {
                      type = types.str;
                      default = "-";
                    };
                    argument = mkOption {
                      type = types.str;
                      default = "";
                    };
                  };
                }
              )
            )
          )
        );
      };
    };

    # --- nixos/modules/config/nix.nix (nix.settings) ----------------------------------
    nix.settings = mkOption {
      default = { };
      type = types.submodule {
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
          trusted-users = mkOption {
            type = types.listOf types.str;
            default = [ "root" ];
          };
          allowed-users = mkOption {
            type = types.listOf types.str;
            default = [ "*" ];
          };
          system-features = strList;
          extra-sandbox-paths = strList;
        };
      };
    };
    nix.extraOptions = mkOption {
      type = types.lines;
      default = "";
    };

    # --- nixos/modules/config/users-groups.nix ----------------------------------------
    users.users = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options = {
              name = mkOption {
                type = types.str;
                default = name;
              };
              uid = mkOption {
                type = types.nullOr types.int;
                default = null;
              };
              isNormalUser = mkOption {
                type = types.bool;
                default = false;
              };
              isSystemUser = mkOption {
                type = types.bool;
                default = false;
              };
              group = mkOption {
                type = types.str;
                default = "";
              };
              extraGroups = strList;
              description = mkOption {
                type = types.str;
                default = "";
              };
              home = mkOption {
                type = types.str;
                default = "/var/empty";
              };
              createHome = mkOption {
                type = types.bool;
                default = false;
              };
              linger = mkOption {
                type = types.nullOr types.bool;
                default = null;
              };
              password = mkOption {
                type = types.nullOr types.str;
                default = null;
              };
              initialPassword = mkOption {
                type = types.nullOr types.str;
                default = null;
              };
            };
          }
        )
      );
    };
    users.groups = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options = {
              name = mkOption {
                type = types.str;
                default = name;
              };
              gid = mkOption {
                type = types.nullOr types.int;
                default = null;
              };
              members = strList;
            };
          }
        )
      );
    };

    # --- nixos/modules/security/ca.nix -------------------------------------------------
    security.pki.certificateFiles = mkOption {
      type = types.listOf types.path;
      default = [ ];
    };

    # --- nixos/modules/config/networking.nix, services/networking/firewall.nix ---------
    networking.extraHosts = mkOption {
      type = types.lines;
      default = "";
    };
    networking.firewall.allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
    };

    # --- nixos/modules/virtualisation/qemu-vm.nix --------------------------------------
    virtualisation.memorySize = mkOption {
      type = types.ints.positive;
      default = 1024;
    };
    virtualisation.cores = mkOption {
      type = types.ints.positive;
      default = 1;
    };

    # --- nixos/modules/services/web-apps/keycloak.nix (what the VM test sets) ---------
    services.keycloak = {
      enable = lib.mkEnableOption "Keycloak";
      sslCertificate = mkOption {
        type = types.nullOr types.path;
        default = null;
      };
      sslCertificateKey = mkOption {
        type = types.nullOr types.path;
        default = null;
      };
      database.passwordFile = mkOption { type = types.path; };
      realmFiles = mkOption {
        type = types.listOf types.path;
        default = [ ];
      };
      settings = mkOption {
        default = { };
        type = types.submodule {
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
            hostname = mkOption {
              type = types.nullOr types.str;
              default = null;
            };
            http-port = mkOption {
              type = types.port;
              default = 80;
            };
            https-port = mkOption {
              type = types.port;
              default = 443;
            };
          };
        };
      };
    };

    # --- nixos/modules/services/web-servers/nginx/{default,vhost-options,
    #     location-options}.nix (what the VM test sets) ---------------------------------
    services.nginx = {
      enable = lib.mkEnableOption "Nginx Web Server";
      virtualHosts = mkOption {
        default = { };
        type = types.attrsOf (
          types.submodule {
            options = {
              onlySSL = mkOption {
                type = types.bool;
                default = false;
              };
              forceSSL = mkOption {
                type = types.bool;
                default = false;
              };
              sslCertificate = mkOption { type = types.path; };
              sslCertificateKey = mkOption { type = types.path; };
              root = mkOption {
                type = types.nullOr types.path;
                default = null;
              };
              extraConfig = mkOption {
                type = types.lines;
                default = "";
              };
              locations = mkOption {
                default = { };
                type = types.attrsOf (
                  types.submodule {
                    options = {
                      proxyPass = mkOption {
                        type = types.nullOr types.str;
                        default = null;
                      };
                      root = mkOption {
                        type = types.nullOr types.path;
                        default = null;
                      };
                      return = mkOption {
                        type = types.nullOr (types.oneOf [
                          types.str
                          types.int
                        ]);
                        default = null;
                      };
                      extraConfig = mkOption {
                        type = types.lines;
                        default = "";
                      };
                    };
                  }
                );
              };
            };
          }
        );
      };
    };
  };

  # nix.nix: NixOS's own defaults, below anything a module sets.
  config.nix.settings.substituters = lib.mkAfter [ "https://cache.nixos.org/" ];
}
