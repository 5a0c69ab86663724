# home-manager module: `programs.nix-cache-login`.
#
# Installs the tool for one user, writes their config to
# $XDG_CONFIG_HOME/nix-cache-login/config.toml and refreshes their token periodically:
# a systemd user timer on Linux, a launchd agent on macOS. Logging in stays interactive
# (`nix-cache-login login`, or `login --device` over SSH).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.programs.nix-cache-login;
  common = import ./nix/module-common.nix { inherit lib pkgs; };
  exe = lib.getExe cfg.package;
  inherit (pkgs.stdenv.hostPlatform) isLinux isDarwin;

  # Units and agents do not see the variables a login shell sets: tell the tool the
  # directories home-manager uses, so it finds the config written below.
  xdgEnvironment = {
    XDG_CONFIG_HOME = config.xdg.configHome;
    XDG_STATE_HOME = config.xdg.stateHome;
    XDG_CACHE_HOME = config.xdg.cacheHome;
  };

  baseOptions = common.baseOptions {
    enable = "nix-cache-login, which keeps an OIDC access token for a private Nix binary cache in a netrc file";
    exampleClientId = "nix-cache-login";
    settingsDescription = ''
      Configuration written to {file}`$XDG_CONFIG_HOME/nix-cache-login/config.toml`.
      Keys: `issuer`, `client_id`, `cache_host` or `cache_hosts`, `netrc_path`
      (default {file}`$XDG_CONFIG_HOME/nix/netrc`), `scopes`, `netrc_login`,
      `callback_port`, `[profiles.NAME]`. Nothing is written when this is empty.
    '';
  };
in
{
  _class = "homeManager";

  options.programs.nix-cache-login = {
    inherit (baseOptions) enable package settings;

    refresh = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = ''
          Whether to run `nix-cache-login refresh` periodically (a systemd user timer on
          Linux, a launchd agent on macOS). Before the first login it exits with code 3
          ("login needed"), which the systemd unit treats as success.
        '';
      };

      minValid = lib.mkOption {
        type = lib.types.str;
        default = "20m";
        description = ''
          `--min-valid` of `nix-cache-login refresh` (the tool's duration syntax: `90s`,
          `20m`, `1h`). Keep it above the interval plus the random delay.
        '';
      };

      interval = lib.mkOption {
        type = lib.types.ints.positive;
        default = 900;
        description = "Seconds between two refreshes (`OnUnitActiveSec=` on Linux, `StartInterval` on macOS).";
      };

      randomizedDelay = lib.mkOption {
        type = lib.types.ints.unsigned;
        default = 60;
        description = "Random delay in seconds added to each run on Linux (`RandomizedDelaySec=`).";
      };
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        home.packages = [ cfg.package ];
      }

      (lib.mkIf (cfg.settings != { }) {
        xdg.configFile."nix-cache-login/config.toml".source =
          common.settingsFormat.generate "nix-cache-login-config.toml" cfg.settings;
      })

      (lib.mkIf (cfg.refresh.enable && isLinux) {
        systemd.user.services.nix-cache-login-refresh = {
          Unit.Description = "Refresh the nix-cache-login access token in the netrc";
          Service = {
            Type = "oneshot";
            ExecStart = "${exe} refresh --min-valid ${cfg.refresh.minValid}";
            # 3: no stored session yet; the user has to run `nix-cache-login login`.
            SuccessExitStatus = "3";
            Environment = lib.mapAttrsToList (name: value: "${name}=${value}") xdgEnvironment;
          };
        };

        systemd.user.timers.nix-cache-login-refresh = {
          Unit.Description = "Refresh the nix-cache-login access token periodically";
          Timer = {
            OnStartupSec = "1min";
            OnUnitActiveSec = "${toString cfg.refresh.interval}s";
            RandomizedDelaySec = "${toString cfg.refresh.randomizedDelay}s";
          };
          Install.WantedBy = [ "timers.target" ];
        };
      })

      (lib.mkIf (cfg.refresh.enable && isDarwin) {
        launchd.agents.nix-cache-login-refresh = {
          enable = true;
          config = {
            ProgramArguments = [
              exe
              "refresh"
              "--min-valid"
              cfg.refresh.minValid
            ];
            StartInterval = cfg.refresh.interval;
            RunAtLoad = true;
            ProcessType = "Background";
            EnvironmentVariables = xdgEnvironment;
          };
        };
      })
    ]
  );
}
