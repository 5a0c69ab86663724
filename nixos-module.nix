# NixOS module for workstations: `programs.nix-cache-login`.
#
# People log in themselves (`nix-cache-login login`); this module installs the tool, writes a
# system-wide default config to /etc/nix-cache-login/config.toml (used only by users who have
# no ~/.config/nix-cache-login/config.toml and set no --config / $NIX_CACHE_LOGIN_CONFIG), and
# runs a systemd user timer that refreshes the token of every logged-in user before it runs
# out. With `daemonBridge.enable`, it also runs the daemon bridge (a socket-activated root
# service) that puts each allowed user's token into the Nix daemon's netrc, and points the
# daemon's `netrc-file` there: users substitute through the daemon without being trusted.
# Without the bridge it does not set Nix's `netrc-file`: see docs/nix.md.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.programs.nix-cache-login;
  bridge = cfg.daemonBridge;
  common = import ./nix/module-common.nix { inherit lib pkgs; };

  baseOptions = common.baseOptions {
    enable = "nix-cache-login, which keeps an OIDC access token for a private Nix binary cache in a netrc file";
    exampleClientId = "nix-cache-login";
    settingsDescription = ''
      System-wide default configuration, written to
      {file}`/etc/nix-cache-login/config.toml`. The tool reads it only when neither
      `--config`, {env}`NIX_CACHE_LOGIN_CONFIG` nor the user's
      {file}`$XDG_CONFIG_HOME/nix-cache-login/config.toml` gives a config. Keys:
      `issuer`, `client_id`, `cache_host` or `cache_hosts`, `netrc_path` (default
      {file}`$XDG_CONFIG_HOME/nix/netrc`; `$VAR`, `''${VAR}` and a leading `~` are
      expanded per user), `scopes`, `netrc_login`, `callback_port`, `daemon_bridge`,
      `[profiles.NAME]`. With {option}`daemonBridge.enable`, `daemon_bridge` is set to the
      bridge's socket unless given here.
      Nothing is written when this is empty.
    '';
  };

  # Fixed by the tool and the units it ships (systemd/nix-cache-login-bridge.*).
  bridgeSocket = "/run/nix-cache-login/bridge.sock";
  bridgeStateDirectory = "nix-cache-login-bridge";

  # A bridge option whose default is the workstation settings' key of the same meaning.
  fromSettings =
    key: description:
    lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = cfg.settings.${key} or null;
      defaultText = lib.literalExpression "config.programs.nix-cache-login.settings.${key} or null";
      inherit description;
    };

  # The cache hosts a client config names (`cache_hosts`, or the one `cache_host`).
  hostsOf = settings: settings.cache_hosts or (lib.optional (settings ? cache_host) settings.cache_host);

  # /etc/nix-cache-login/bridge.toml (keys: docs/nix.md, "The daemon bridge").
  bridgeSettings = {
    inherit (bridge) issuer;
    cache_hosts = bridge.cacheHosts;
    netrc_path = bridge.netrcPath;
    allowed_users = bridge.allowedUsers;
    allowed_groups = bridge.allowedGroups;
    state_dir = "/var/lib/${bridgeStateDirectory}";
  }
  // lib.optionalAttrs (bridge.clientId != null) { client_id = bridge.clientId; }
  // lib.optionalAttrs (bridge.audience != null) { inherit (bridge) audience; }
  // lib.optionalAttrs (bridge.netrcLogin != null) { netrc_login = bridge.netrcLogin; };
  bridgeConfig = common.settingsFormat.generate "nix-cache-login-bridge.toml" bridgeSettings;

  # The client config names the bridge's socket: the tool would find the default one by
  # itself, but a config that says so shows where every login goes.
  clientSettings = lib.optionalAttrs bridge.enable { daemon_bridge = bridgeSocket; } // cfg.settings;

  # Hosts that the server module's service account also writes into the same netrc.
  server = lib.attrByPath [ "services" "nix-cache-login-server" ] { } config;
  serverHosts = hostsOf (server.settings or { });
  sharedWithServer =
    bridge.enable
    && (server.enable or false)
    && (server.netrcPath or null) == bridge.netrcPath
    && lib.intersectLists serverHosts bridge.cacheHosts != [ ];
in
{
  _class = "nixos";

  imports =
    map
      (
        name:
        lib.mkRemovedOptionModule [ "programs" "nix-cache-login" "netrcPlaceholder" name ] ''
          The netrc writer creates NETRC.lock and .NETRC.tmp.* beside the netrc, so only the
          owner of its directory can keep it, and /etc/nix is root's: the placeholder is
          always root's (0600). To let the Nix daemon use each user's login, enable
          programs.nix-cache-login.daemonBridge (see docs/nix.md).''
      )
      [
        "owner"
        "group"
      ];

  options.programs.nix-cache-login = {
    inherit (baseOptions) enable package settings;

    refresh = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = ''
          Whether to run `nix-cache-login refresh` from a systemd user timer for every
          user with a running user manager (a login session, or lingering). A user who
          has not logged in yet gets exit code 3 ("login needed"), which the unit treats
          as success.
        '';
      };

      minValid = lib.mkOption {
        type = lib.types.str;
        default = "20m";
        example = "30m";
        description = ''
          `--min-valid` of `nix-cache-login refresh`: a token that stays valid at least
          this long is left alone. The tool's duration syntax: `90s`, `20m`, `1h30m`.
          Keep it longer than {option}`interval` plus {option}`randomizedDelay`, so
          that the token never runs out between two runs.
        '';
      };

      interval = lib.mkOption {
        type = lib.types.str;
        default = "15min";
        description = "How often the refresh runs (systemd time span, `OnUnitActiveSec=`).";
      };

      randomizedDelay = lib.mkOption {
        type = lib.types.str;
        default = "1min";
        description = "Random delay added to each run (`RandomizedDelaySec=`).";
      };
    };

    netrcPlaceholder = {
      enable = lib.mkEnableOption ''
        an empty netrc file (mode 0600) at {option}`netrcPlaceholder.path`, created at boot
        by systemd-tmpfiles when missing. Lix refuses a configured `netrc-file` that does
        not exist, and Determinate Nix refuses to start with a missing
        `additionalNetrcSources` file; cppnix ignores a missing one. It belongs to root
        (the daemon bridge and the server module keep a root-owned netrc); the parent
        directory must exist'';

      path = lib.mkOption {
        type = lib.types.str;
        default = "/etc/nix/netrc";
        description = "Where the placeholder is created (an absolute path outside /nix/store, /home, /root and /run/user).";
      };
    };

    daemonBridge = {
      enable = lib.mkEnableOption ''
        the daemon bridge: a socket-activated root service
        (`nix-cache-login bridge serve`) that puts the access token an allowed user hands
        over into the Nix daemon's netrc ({option}`netrcPath`), after checking who asks and
        that the token is signed by {option}`issuer` for one of {option}`cacheHosts`.
        `login`, `refresh`, `service-account`, `token` and `logout` hand every change to it,
        so users substitute through the daemon without being in `trusted-users`. The daemon
        has one entry per host: with several users, the last login wins'';

      allowedUsers = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
        example = [ "alice" ];
        description = "Users who may hand a token to the bridge (`allowed_users`; root always may).";
      };

      allowedGroups = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [
          "users"
          "wheel"
        ];
        description = ''
          Groups whose members may hand a token to the bridge (`allowed_groups`). NixOS puts
          every normal user in `users`.
        '';
      };

      issuer = fromSettings "issuer" "The OIDC issuer whose signed access tokens the bridge accepts (`issuer`).";

      clientId = fromSettings "client_id" ''
        The client a token must have been issued to (`azp`, or `aud`): `client_id`. Set this,
        {option}`audience` or both.
      '';

      audience = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "nix-cache";
        description = "An `aud` value the bridge also accepts (`audience`).";
      };

      cacheHosts = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = hostsOf cfg.settings;
        defaultText = lib.literalExpression "the cache_host or cache_hosts of config.programs.nix-cache-login.settings";
        description = "The cache hosts whose entries the bridge may write (`cache_hosts`).";
      };

      netrcPath = lib.mkOption {
        type = lib.types.str;
        default = "/etc/nix/netrc";
        description = ''
          The Nix daemon's netrc, which the bridge keeps (`netrc_path`). The bridge may
          write only the directory holding it; an empty root-owned placeholder is created at
          boot. For Determinate Nix, list this file in `additionalNetrcSources` and mind that
          determinate-nixd reads it only at start (docs/nix.md).
        '';
      };

      netrcLogin = fromSettings "netrc_login" "The login word written beside each token (`netrc_login`; the tool's default when null).";

      setNixNetrcFile = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = ''
          Whether to set `nix.settings.netrc-file` to {option}`netrcPath`, so that the
          daemon reads what the bridge writes (cppnix and Lix).
        '';
      };
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        environment.systemPackages = [ cfg.package ];
      }

      (lib.mkIf (cfg.settings != { }) {
        environment.etc."nix-cache-login/config.toml".source =
          common.settingsFormat.generate "nix-cache-login-config.toml" clientSettings;
      })

      (lib.mkIf cfg.refresh.enable {
        systemd.user.services.nix-cache-login-refresh = {
          description = "Refresh the nix-cache-login access token in the netrc";
          unitConfig = {
            # No refresh for the user managers of system users (gdm, root's, ...).
            ConditionUser = "!@system";
          };
          serviceConfig = {
            Type = "oneshot";
            ExecStart = "${lib.getExe cfg.package} refresh --min-valid ${cfg.refresh.minValid}";
            # 3: no stored session, the user has to run `nix-cache-login login`. Not a
            # failure of this unit (nothing a timer can do about it).
            SuccessExitStatus = [ "3" ];
          };
        };

        systemd.user.timers.nix-cache-login-refresh = {
          description = "Refresh the nix-cache-login access token periodically";
          wantedBy = [ "timers.target" ];
          timerConfig = {
            OnStartupSec = "1min";
            OnUnitActiveSec = cfg.refresh.interval;
            RandomizedDelaySec = cfg.refresh.randomizedDelay;
          };
        };
      })

      (lib.mkIf cfg.netrcPlaceholder.enable {
        assertions = [
          (common.netrcPathAssertion "programs.nix-cache-login.netrcPlaceholder.path" cfg.netrcPlaceholder.path)
        ];
        systemd.tmpfiles.settings = common.netrcPlaceholder cfg.netrcPlaceholder.path;
      })

      (lib.mkIf bridge.enable {
        assertions = [
          (common.netrcPathAssertion "programs.nix-cache-login.daemonBridge.netrcPath" bridge.netrcPath)
          {
            assertion = bridge.issuer != null;
            message = "programs.nix-cache-login.daemonBridge.issuer is not set (nor programs.nix-cache-login.settings.issuer): the bridge accepts only tokens signed by this issuer.";
          }
          {
            assertion = bridge.clientId != null || bridge.audience != null;
            message = "programs.nix-cache-login.daemonBridge: set clientId or audience (or programs.nix-cache-login.settings.client_id): the bridge accepts only tokens issued for them.";
          }
          {
            assertion = bridge.cacheHosts != [ ];
            message = "programs.nix-cache-login.daemonBridge.cacheHosts is empty (and programs.nix-cache-login.settings has no cache_host): the bridge would accept no token.";
          }
        ];

        warnings = lib.optional sharedWithServer "programs.nix-cache-login.daemonBridge and services.nix-cache-login-server both write ${bridge.netrcPath} for ${lib.concatStringsSep ", " (lib.intersectLists serverHosts bridge.cacheHosts)}: the daemon has one entry per host, so the last writer wins.";

        # A real file (not a link into the store), root's: the bridge reads only its own
        # root-owned config.
        environment.etc."nix-cache-login/bridge.toml" = {
          source = bridgeConfig;
          mode = "0644";
        };

        systemd.tmpfiles.settings = common.netrcPlaceholder bridge.netrcPath;

        nix.settings = lib.mkIf bridge.setNixNetrcFile { netrc-file = bridge.netrcPath; };

        # The units the package ships (systemd/nix-cache-login-bridge.{socket,service}),
        # written as NixOS options so that the netrc's directory follows netrcPath.
        systemd.sockets.nix-cache-login-bridge = {
          description = "nix-cache-login daemon bridge socket";
          documentation = [ "man:nix-cache-login(1)" ];
          wantedBy = [ "sockets.target" ];
          listenStreams = [ bridgeSocket ];
          socketConfig = {
            # Every user may connect; the bridge checks each caller (SO_PEERCRED).
            SocketMode = "0666";
            DirectoryMode = "0755";
          };
        };

        systemd.services.nix-cache-login-bridge = {
          description = "nix-cache-login daemon bridge (hands users' cache tokens to the Nix daemon's netrc)";
          documentation = [ "man:nix-cache-login(1)" ];
          requires = [ "nix-cache-login-bridge.socket" ];
          after = [ "nix-cache-login-bridge.socket" ];
          restartTriggers = [ bridgeConfig ];
          serviceConfig = common.hardening bridge.netrcPath // {
            ExecStart = "${lib.getExe cfg.package} bridge serve";
            StateDirectory = bridgeStateDirectory;
            StateDirectoryMode = "0700";
          };
        };
      })
    ]
  );
}
