# NixOS module for workstations: `programs.nix-cache-login`.
#
# People log in themselves (`nix-cache-login login`); this module installs the tool, writes a
# system-wide default config to /etc/nix-cache-login/config.toml (used only by users who have
# no ~/.config/nix-cache-login/config.toml and set no --config / $NIX_CACHE_LOGIN_CONFIG), and
# runs a systemd user timer that refreshes the token of every logged-in user before it runs
# out. It does not set Nix's `netrc-file`: see docs/nix.md for how to point Nix at the netrc.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.programs.nix-cache-login;
  settingsFormat = pkgs.formats.toml { };
in
{
  options.programs.nix-cache-login = {
    enable = lib.mkEnableOption "nix-cache-login, which keeps an OIDC access token for a private Nix binary cache in a netrc file";

    package = lib.mkPackageOption pkgs "nix-cache-login" { };

    settings = lib.mkOption {
      type = settingsFormat.type;
      default = { };
      example = lib.literalExpression ''
        {
          issuer = "https://sso.example.com/realms/nix";
          client_id = "nix-cache-login";
          cache_host = "cache.example.com";
        }
      '';
      description = ''
        System-wide default configuration, written to
        {file}`/etc/nix-cache-login/config.toml`. The tool reads it only when neither
        `--config`, {env}`NIX_CACHE_LOGIN_CONFIG` nor the user's
        {file}`$XDG_CONFIG_HOME/nix-cache-login/config.toml` gives a config. Keys:
        `issuer`, `client_id`, `cache_host` or `cache_hosts`, `netrc_path` (default
        {file}`$XDG_CONFIG_HOME/nix/netrc`; `$VAR`, `''${VAR}` and a leading `~` are
        expanded per user), `scopes`, `netrc_login`, `callback_port`, `[profiles.NAME]`.
        Nothing is written when this is empty.
      '';
    };

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
        `additionalNetrcSources` file; cppnix ignores a missing one. The parent directory
        must exist'';

      path = lib.mkOption {
        type = lib.types.str;
        default = "/etc/nix/netrc";
        description = "Where the placeholder is created (an absolute path outside /nix/store).";
      };

      owner = lib.mkOption {
        type = lib.types.str;
        default = "root";
        description = "Owner of the placeholder; the user whose `nix-cache-login` writes it.";
      };

      group = lib.mkOption {
        type = lib.types.str;
        default = "root";
        description = "Group of the placeholder.";
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
          settingsFormat.generate "nix-cache-login-config.toml" cfg.settings;
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
          {
            assertion =
              lib.hasPrefix "/" cfg.netrcPlaceholder.path
              && !lib.hasPrefix "/nix/store/" cfg.netrcPlaceholder.path;
            message = "programs.nix-cache-login.netrcPlaceholder.path must be an absolute path outside /nix/store.";
          }
        ];
        systemd.tmpfiles.rules = [
          "f ${cfg.netrcPlaceholder.path} 0600 ${cfg.netrcPlaceholder.owner} ${cfg.netrcPlaceholder.group} -"
        ];
      })
    ]
  );
}
