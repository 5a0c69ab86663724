# NixOS module for servers and CI builders: `services.nix-cache-login-server`.
#
# A hardened oneshot service runs `nix-cache-login service-account` (OAuth client
# credentials grant) from a timer and keeps the access token in the netrc that the Nix
# daemon reads (by default /etc/nix/netrc, which is already cppnix's and Lix's default
# `netrc-file`). The client secret is handed over with systemd's LoadCredential, so it never
# enters the Nix store and is readable only by the service.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.nix-cache-login-server;
  common = import ./nix/module-common.nix { inherit lib pkgs; };

  configPath = "/etc/nix-cache-login/config.toml";
  credentialName = "client-secret";

  baseOptions = common.baseOptions {
    enable = "a timer that keeps a service-account (client credentials) access token for a private Nix binary cache in the Nix daemon's netrc";
    exampleClientId = "nix-cache-ci";
    settingsDescription = ''
      The configuration, written to {file}`${configPath}`. The module adds
      `netrc_path` (from {option}`netrcPath`) and, when {option}`clientSecretFile` is
      set, `client_secret_file = "$CREDENTIALS_DIRECTORY/${credentialName}"`.
      Set either this or {option}`configFile`.
    '';
  };

  # What the module adds to `settings`: where the netrc goes (so that the sandbox below and
  # the tool agree on it) and where the secret shows up inside the unit.
  generatedSettings = {
    netrc_path = cfg.netrcPath;
  }
  // lib.optionalAttrs (cfg.clientSecretFile != null) {
    client_secret_file = "$CREDENTIALS_DIRECTORY/${credentialName}";
  }
  // cfg.settings;

  configSource =
    if cfg.configFile != null then
      cfg.configFile
    else
      common.settingsFormat.generate "nix-cache-login-server.toml" generatedSettings;

in
{
  _class = "nixos";

  options.services.nix-cache-login-server = {
    inherit (baseOptions) enable package settings;

    configFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = lib.literalExpression "./nix-cache-login.toml";
      description = ''
        A ready-made config file, installed as {file}`${configPath}` instead of one
        generated from {option}`settings`. It ends up in the Nix store: it must not hold
        the secret itself, only `client_secret_file` (with {option}`clientSecretFile` set,
        use `client_secret_file = "$CREDENTIALS_DIRECTORY/${credentialName}"`). Its
        `netrc_path` must be {option}`netrcPath`: the service may write only there.
      '';
    };

    clientSecretFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/run/secrets/nix-cache-login-client-secret";
      description = ''
        A file (outside the Nix store; e.g. from agenix or sops-nix) holding the OAuth
        client secret. It is passed to the service with `LoadCredential=` and appears as
        {file}`$CREDENTIALS_DIRECTORY/${credentialName}`. Required unless
        {option}`configFile` is given.
      '';
    };

    netrcPath = lib.mkOption {
      type = lib.types.str;
      default = "/etc/nix/netrc";
      description = ''
        The netrc file the token is written to. The default is Nix's default
        `netrc-file`, so cppnix and Lix need no further setting; for Determinate Nix add
        it to `additionalNetrcSources` (see docs/nix.md). The service may write only to
        the directory holding this file, which must exist.
      '';
    };

    createNetrcPlaceholder = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Whether systemd-tmpfiles creates an empty {option}`netrcPath` (0600, root) at boot
        when it is missing. Lix refuses a configured `netrc-file` that does not exist and
        Determinate Nix refuses to start with a missing `additionalNetrcSources` file;
        this keeps them working before the first token has been fetched.
      '';
    };

    minValid = lib.mkOption {
      type = lib.types.str;
      default = "4m";
      description = ''
        `--min-valid` of `nix-cache-login service-account`: a token that stays valid at
        least this long is kept, otherwise a new one is fetched. The tool's duration syntax
        (`90s`, `4m`, `1h`). Keep it above {option}`interval` plus
        {option}`randomizedDelay`, so that the netrc never holds an expired token; with
        Keycloak's default 5-minute access tokens, the defaults fetch a new token about
        every 2 minutes and the token in the netrc always has more than 90 seconds left.
      '';
    };

    interval = lib.mkOption {
      type = lib.types.str;
      default = "2min";
      description = ''
        How often the timer runs the service (systemd time span, `OnUnitActiveSec=`).
        A run that finds a token valid for longer than {option}`minValid` does not contact
        the identity provider, so a short interval is cheap.
      '';
    };

    randomizedDelay = lib.mkOption {
      type = lib.types.str;
      default = "30s";
      description = ''
        Random delay added to each run (`RandomizedDelaySec=`), so that a fleet of machines
        booted together does not ask the identity provider at the same moment.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = (cfg.configFile != null) != (cfg.settings != { });
        message = "services.nix-cache-login-server: set exactly one of `settings` and `configFile`.";
      }
      {
        assertion = cfg.configFile != null || cfg.clientSecretFile != null;
        message = "services.nix-cache-login-server.clientSecretFile is required unless `configFile` is given (the service account needs its client secret).";
      }
      {
        assertion = (cfg.settings.netrc_path or cfg.netrcPath) == cfg.netrcPath;
        message = "services.nix-cache-login-server: set the netrc location with `netrcPath`, not `settings.netrc_path` (the service may only write to netrcPath's directory).";
      }
      (common.netrcPathAssertion "services.nix-cache-login-server.netrcPath" cfg.netrcPath)
      {
        assertion = cfg.clientSecretFile == null || lib.hasPrefix "/" cfg.clientSecretFile;
        message = "services.nix-cache-login-server.clientSecretFile must be an absolute path.";
      }
      {
        assertion = (config.programs.nix-cache-login.settings or { }) == { };
        message = "programs.nix-cache-login.settings and services.nix-cache-login-server both write ${configPath}; on a machine with the server module, leave programs.nix-cache-login.settings empty.";
      }
    ];

    warnings =
      lib.optional (cfg.clientSecretFile != null && lib.hasPrefix builtins.storeDir cfg.clientSecretFile)
        "services.nix-cache-login-server.clientSecretFile is in the Nix store, where every local user can read it.";

    environment.systemPackages = [ cfg.package ];

    environment.etc."nix-cache-login/config.toml".source = configSource;

    systemd.tmpfiles.settings = lib.mkIf cfg.createNetrcPlaceholder (common.netrcPlaceholder cfg.netrcPath);

    systemd.services.nix-cache-login-server = {
      description = "Fetch a service-account access token for the Nix binary cache into the netrc";
      documentation = [ "man:nix-cache-login(1)" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      restartTriggers = [ configSource ];

      environment = {
        NIX_CACHE_LOGIN_CONFIG = configPath;
        # Root's service has no usable HOME: keep the token store and the discovery cache
        # in the directories systemd makes for the unit.
        XDG_STATE_HOME = "/var/lib";
        XDG_CACHE_HOME = "/var/cache";
      };

      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${lib.getExe cfg.package} service-account --min-valid ${cfg.minValid}";
        LoadCredential = lib.optional (
          cfg.clientSecretFile != null
        ) "${credentialName}:${cfg.clientSecretFile}";

        StateDirectory = "nix-cache-login";
        StateDirectoryMode = "0700";
        CacheDirectory = "nix-cache-login";
        CacheDirectoryMode = "0700";
      }
      # Talks HTTPS to the identity provider, writes only the netrc's directory.
      // common.hardening cfg.netrcPath;
    };

    systemd.timers.nix-cache-login-server = {
      description = "Keep the Nix binary cache service-account token fresh";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "15s";
        OnUnitActiveSec = cfg.interval;
        RandomizedDelaySec = cfg.randomizedDelay;
      };
    };
  };
}
