# Evaluates the NixOS modules, the home-manager module, the VM test nodes, package.nix and
# flake.nix with nixpkgs' real lib and module system (./harness.nix), against the host
# options in ./options and the stand-in package set in ./stub, and checks what they produce.
# Run by tests/nix/check.sh:
#
#   NIXPKGS_LIB=.../lib nix-instantiate --eval --strict --json tests/nix/eval-modules.nix
#
# The result is a list of { name; ok; detail; }; `detail` shows the value that was checked.
# Definitions that must be refused are in ./negative.nix.
let
  h = import ./harness.nix;
  inherit (h)
    lib
    stubPkgs
    failedAssertions
    force
    renderUnit
    parseUnitFile
    ;
  inherit (builtins)
    elem
    filter
    hasAttr
    length
    all
    attrNames
    ;
  inherit (lib) hasPrefix hasSuffix hasInfix;

  pkgs = stubPkgs { };
  exe = "${pkgs.nix-cache-login}/bin/nix-cache-login";

  anyContains = needle: list: builtins.any (m: hasInfix needle m) list;
  check = name: ok: detail: { inherit name ok detail; };

  nixos = args: (h.nixos args).config;
  homeManager = args: (h.homeManager args).config;

  # Every option with a value, forced (see harness.nix); true or an evaluation error.
  forced = args: force (h.nixos args);

  settings = {
    issuer = "https://sso.example.com/realms/nix";
    client_id = "nix-cache";
    cache_host = "cache.example.com";
  };

  placeholderAt = path: {
    nix-cache-login.${path}.f = {
      type = "f";
      mode = "0600";
      user = "root";
      group = "root";
      age = "-";
      argument = "";
    };
  };

  # The sandbox of the two root services that keep a netrc (the bridge, the server's
  # service), spelt out here rather than taken from nix/module-common.nix, so that a change
  # there shows.
  sandboxedRootService =
    serviceConfig:
    serviceConfig.ProtectSystem == "strict"
    && serviceConfig.ProtectHome == true
    && serviceConfig.NoNewPrivileges == true
    && serviceConfig.PrivateTmp == true
    && serviceConfig.CapabilityBoundingSet == ""
    && serviceConfig.UMask == "0077"
    && serviceConfig.RestrictAddressFamilies == [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
    ]
    && elem "@system-service" serviceConfig.SystemCallFilter
    && !(serviceConfig ? User || serviceConfig ? DynamicUser);

  # ---------------------------------------------------------------- workstation module
  workstationModules = cfg: [
    ../../nixos-module.nix
    { programs.nix-cache-login = { enable = true; } // cfg; }
  ];
  workstationArgs = cfg: { modules = workstationModules cfg; };
  workstationWith = cfg: nixos (workstationArgs cfg);

  workstationCfg = {
    inherit settings;
    netrcPlaceholder.enable = true;
  };
  workstation = workstationWith workstationCfg;
  wsService = workstation.systemd.user.services.nix-cache-login-refresh;
  wsTimer = workstation.systemd.user.timers.nix-cache-login-refresh;
  wsEtc = workstation.environment.etc."nix-cache-login/config.toml";

  workstationMinimal = workstationWith { };
  workstationNoTimer = workstationWith { refresh.enable = false; };
  workstationDisabledArgs = {
    modules = [
      ../../nixos-module.nix
      { programs.nix-cache-login.settings = settings; }
    ];
  };
  workstationDisabled = nixos workstationDisabledArgs;
  placeholderOwner = workstationWith {
    netrcPlaceholder = {
      enable = true;
      owner = "alice";
    };
  };
  placeholderInHome = workstationWith {
    netrcPlaceholder = {
      enable = true;
      path = "/home/alice/.config/nix/netrc";
    };
  };

  workstationChecks = [
    (check "workstation: defines only declared options, with values of their types (everything forced)" (
      forced (workstationArgs workstationCfg)
      && forced (workstationArgs { })
      && forced (workstationArgs { refresh.enable = false; })
      && forced workstationDisabledArgs
    ) null)
    (check "workstation: no failed assertions" (failedAssertions workstation == [ ]) (
      failedAssertions workstation
    ))
    (check "workstation: package in environment.systemPackages" (elem pkgs.nix-cache-login workstation.environment.systemPackages) (
      map (p: p.name) workstation.environment.systemPackages
    ))
    (check "workstation: settings become /etc/nix-cache-login/config.toml" (wsEtc.source.tomlValue == settings) wsEtc.source.tomlValue)
    (check "workstation: no /etc config when settings are empty" (!(hasAttr "nix-cache-login/config.toml" workstationMinimal.environment.etc)) (
      attrNames workstationMinimal.environment.etc
    ))
    (check "workstation: refresh unit runs `refresh --min-valid 20m`" (
      wsService.serviceConfig.ExecStart == "${exe} refresh --min-valid 20m"
    ) wsService.serviceConfig.ExecStart)
    (check "workstation: refresh unit is a oneshot" (wsService.serviceConfig.Type == "oneshot") wsService.serviceConfig.Type)
    (check "workstation: SuccessExitStatus of the refresh unit contains 3" (elem "3" (lib.toList wsService.serviceConfig.SuccessExitStatus)) wsService.serviceConfig.SuccessExitStatus)
    (check "workstation: refresh unit skips system users" (wsService.unitConfig.ConditionUser == "!@system") wsService.unitConfig)
    (check "workstation: user timer every 15 minutes with a random delay, enabled" (
      wsTimer.timerConfig.OnUnitActiveSec == "15min"
      && wsTimer.timerConfig ? RandomizedDelaySec
      && wsTimer.timerConfig ? OnStartupSec
      && elem "timers.target" wsTimer.wantedBy
    ) wsTimer.timerConfig)
    (check "workstation: netrc placeholder is an empty root 0600 file made by tmpfiles, keyed by path" (
      workstation.systemd.tmpfiles.settings == placeholderAt "/etc/nix/netrc"
      && workstation.systemd.tmpfiles.rules == [ ]
    ) workstation.systemd.tmpfiles.settings)
    (check "workstation: no placeholder unless asked" (workstationMinimal.systemd.tmpfiles.settings == { }) workstationMinimal.systemd.tmpfiles.settings)
    (check "workstation: without the bridge, does not set nix's netrc-file" (!(workstation.nix.settings ? netrc-file)) workstation.nix.settings)
    (check "workstation: refresh.enable = false drops the user units" (
      workstationNoTimer.systemd.user.services == { } && workstationNoTimer.systemd.user.timers == { }
    ) (attrNames workstationNoTimer.systemd.user.services))
    (check "workstation: nothing happens while disabled" (
      workstationDisabled.environment.systemPackages == [ ]
      && workstationDisabled.environment.etc == { }
      && workstationDisabled.systemd.user.services == { }
      && workstationDisabled.systemd.services == { }
    ) (attrNames workstationDisabled.environment.etc))
    (check "workstation: netrcPlaceholder.owner is gone, and says why (NETRC.lock beside the netrc)" (
      anyContains "netrcPlaceholder.owner' in" (failedAssertions placeholderOwner)
      && anyContains "NETRC.lock and .NETRC.tmp.*" (failedAssertions placeholderOwner)
    ) (failedAssertions placeholderOwner))
    (check "workstation: a placeholder in a home directory fails an assertion" (
      anyContains "netrcPlaceholder.path must be an absolute path outside" (failedAssertions placeholderInHome)
    ) (failedAssertions placeholderInHome))
  ];

  # ---------------------------------------------------------------- daemon bridge
  bridgeWith = bridgeCfg: workstationWith (workstationCfg // { daemonBridge = { enable = true; } // bridgeCfg; });
  bridgeArgs = bridgeCfg: workstationArgs (workstationCfg // { daemonBridge = { enable = true; } // bridgeCfg; });

  br = bridgeWith { };
  brService = br.systemd.services.nix-cache-login-bridge;
  brSocket = br.systemd.sockets.nix-cache-login-bridge;
  brSC = brService.serviceConfig;
  brEtc = br.environment.etc."nix-cache-login/bridge.toml";
  brToml = brEtc.source.tomlValue;
  socketPath = "/run/nix-cache-login/bridge.sock";

  brOwn = bridgeWith {
    allowedUsers = [ "ci" ];
    allowedGroups = [ "nix-users" ];
    clientId = null;
    audience = "nix-cache";
    cacheHosts = [
      "a.example.com"
      "b.example.com"
    ];
    netrcPath = "/var/lib/nix-netrc/netrc";
    netrcLogin = "token";
    setNixNetrcFile = false;
  };
  brOwnToml = brOwn.environment.etc."nix-cache-login/bridge.toml".source.tomlValue;

  brNoSettings = nixos {
    modules = [
      ../../nixos-module.nix
      {
        programs.nix-cache-login = {
          enable = true;
          daemonBridge.enable = true;
        };
      }
    ];
  };
  brInHome = bridgeWith { netrcPath = "/home/alice/netrc"; };
  brUserSaysNo = workstationWith {
    settings = settings // {
      daemon_bridge = false;
    };
    daemonBridge.enable = true;
  };

  # With the server module on the same machine, writing the same host into the same netrc.
  withServerArgs = workstationCfg: {
    modules = [
      ../../nixos-module.nix
      ../../nixos-module-server.nix
      {
        programs.nix-cache-login = {
          enable = true;
        }
        // workstationCfg;
        services.nix-cache-login-server = {
          enable = true;
          clientSecretFile = "/run/keys/s";
          inherit settings;
        };
      }
    ];
  };
  brAndServer = nixos (withServerArgs {
    daemonBridge = {
      enable = true;
      issuer = settings.issuer;
      clientId = "nix-cache-login";
      cacheHosts = [ settings.cache_host ];
    };
    netrcPlaceholder.enable = true;
  });

  # The units shipped for systems without NixOS, as the package installs them.
  shippedUnit =
    name:
    parseUnitFile (
      builtins.replaceStrings [ "@bindir@" ] [ "${pkgs.nix-cache-login}/bin" ] (
        builtins.readFile ../../systemd/${name}
      )
    );

  bridgeChecks = [
    (check "bridge: defines only declared options, with values of their types (everything forced)" (
      forced (bridgeArgs { }) && forced (bridgeArgs { setNixNetrcFile = false; })
    ) null)
    (check "bridge: no failed assertions with the workstation settings alone" (failedAssertions br == [ ]) (failedAssertions br))
    (check "bridge: /etc/nix-cache-login/bridge.toml from the workstation settings, users and wheel allowed" (
      brToml == {
        inherit (settings) issuer client_id;
        cache_hosts = [ settings.cache_host ];
        netrc_path = "/etc/nix/netrc";
        allowed_users = [ ];
        allowed_groups = [
          "users"
          "wheel"
        ];
        state_dir = "/var/lib/nix-cache-login-bridge";
      }
    ) brToml)
    (check "bridge: bridge.toml is a real root-owned file, not a link into the store" (
      brEtc.mode == "0644" && brEtc.user == "+0" && brEtc.group == "+0"
    ) brEtc.mode)
    (check "bridge: every option maps to its bridge.toml key" (
      brOwnToml == {
        inherit (settings) issuer;
        audience = "nix-cache";
        cache_hosts = [
          "a.example.com"
          "b.example.com"
        ];
        netrc_path = "/var/lib/nix-netrc/netrc";
        netrc_login = "token";
        allowed_users = [ "ci" ];
        allowed_groups = [ "nix-users" ];
        state_dir = "/var/lib/nix-cache-login-bridge";
      }
      && failedAssertions brOwn == [ ]
    ) brOwnToml)
    (check "bridge: the client config names the bridge's socket (daemon_bridge)" (
      br.environment.etc."nix-cache-login/config.toml".source.tomlValue.daemon_bridge == socketPath
    ) br.environment.etc."nix-cache-login/config.toml".source.tomlValue)
    (check "bridge: daemon_bridge = false in settings wins" (
      brUserSaysNo.environment.etc."nix-cache-login/config.toml".source.tomlValue.daemon_bridge == false
    ) null)
    (check "bridge: the daemon's netrc-file is the bridge's netrc, unless told not to" (
      br.nix.settings.netrc-file == "/etc/nix/netrc" && !(brOwn.nix.settings ? netrc-file)
    ) br.nix.settings)
    (check "bridge: the daemon's netrc exists from boot (root 0600 placeholder), one entry with netrcPlaceholder" (
      br.systemd.tmpfiles.settings == placeholderAt "/etc/nix/netrc"
      && brOwn.systemd.tmpfiles.settings
        == lib.recursiveUpdate (placeholderAt "/etc/nix/netrc") (placeholderAt "/var/lib/nix-netrc/netrc")
      && br.systemd.tmpfiles.rules == [ ]
    ) br.systemd.tmpfiles.settings)
    (check "bridge: socket unit at /run/nix-cache-login/bridge.sock, 0666, started with sockets.target" (
      brSocket.listenStreams == [ socketPath ]
      && brSocket.socketConfig.SocketMode == "0666"
      && brSocket.wantedBy == [ "sockets.target" ]
    ) brSocket.socketConfig)
    (check "bridge: service runs `bridge serve`, started by its socket, restarted when bridge.toml changes" (
      brSC.ExecStart == "${exe} bridge serve"
      && brService.requires == [ "nix-cache-login-bridge.socket" ]
      && brService.after == [ "nix-cache-login-bridge.socket" ]
      && brService.wantedBy == [ ]
      && elem brEtc.source brService.restartTriggers
    ) brSC.ExecStart)
    (check "bridge: service hardened, writes only the netrc's directory and its state directory" (
      sandboxedRootService brSC
      && brSC.ReadWritePaths == [ "/etc/nix" ]
      && brSC.StateDirectory == "nix-cache-login-bridge"
      && brSC.StateDirectoryMode == "0700"
    ) brSC)
    (check "bridge: netrcPath moves the writable directory" (
      brOwn.systemd.services.nix-cache-login-bridge.serviceConfig.ReadWritePaths == [ "/var/lib/nix-netrc" ]
    ) brOwn.systemd.services.nix-cache-login-bridge.serviceConfig.ReadWritePaths)
    (check "bridge: the shipped service file says what the module's service says" (
      shippedUnit "nix-cache-login-bridge.service" == renderUnit brService
    ) (shippedUnit "nix-cache-login-bridge.service"))
    (check "bridge: the shipped socket file says what the module's socket says" (
      shippedUnit "nix-cache-login-bridge.socket" == renderUnit brSocket
    ) (renderUnit brSocket))
    (check "bridge: without issuer, client and hosts, assertions name each" (
      let
        failed = failedAssertions brNoSettings;
      in
      anyContains "daemonBridge.issuer is not set" failed
      && anyContains "set clientId or audience" failed
      && anyContains "daemonBridge.cacheHosts is empty" failed
    ) (failedAssertions brNoSettings))
    (check "bridge: a netrcPath in a home directory fails an assertion" (
      anyContains "daemonBridge.netrcPath must be an absolute path outside" (failedAssertions brInHome)
    ) (failedAssertions brInHome))
    (check "bridge: beside the server module, one placeholder rule and a warning about the shared host" (
      failedAssertions brAndServer == [ ]
      && brAndServer.systemd.tmpfiles.settings == placeholderAt "/etc/nix/netrc"
      && brAndServer.systemd.tmpfiles.rules == [ ]
      && anyContains "the last writer wins" brAndServer.warnings
    ) brAndServer.warnings)
  ];

  # ---------------------------------------------------------------- server module
  serverArgs = cfg: {
    modules = [
      ../../nixos-module-server.nix
      { services.nix-cache-login-server = { enable = true; } // cfg; }
    ];
  };
  server = cfg: nixos (serverArgs cfg);

  srvCfg = {
    clientSecretFile = "/run/keys/nix-cache-secret";
    inherit settings;
  };
  srv = server srvCfg;
  srvService = srv.systemd.services.nix-cache-login-server;
  srvSC = srvService.serviceConfig;
  srvTimer = srv.systemd.timers.nix-cache-login-server;
  srvToml = srv.environment.etc."nix-cache-login/config.toml".source.tomlValue;

  srvConfigFileCfg = {
    configFile = "/srv/nix-cache-login.toml";
  };
  srvConfigFile = server srvConfigFileCfg;
  srvConfigFileAndSecretCfg = srvConfigFileCfg // {
    clientSecretFile = "/run/keys/s";
  };
  srvConfigFileAndSecret = server srvConfigFileAndSecretCfg;
  srvBoth = server (srvConfigFileAndSecretCfg // { inherit settings; });
  srvNeither = server { clientSecretFile = "/run/keys/s"; };
  srvNoSecret = server { inherit settings; };
  srvNetrcMismatch = server {
    clientSecretFile = "/run/keys/s";
    settings = settings // {
      netrc_path = "/root/netrc";
    };
  };
  srvOwnNetrcCfg = {
    clientSecretFile = "/run/keys/s";
    inherit settings;
    netrcPath = "/var/lib/nix-netrc/netrc";
    createNetrcPlaceholder = false;
  };
  srvOwnNetrc = server srvOwnNetrcCfg;
  srvHomeNetrc = server (srvOwnNetrcCfg // { netrcPath = "/root/.config/nix/netrc"; });
  srvStoreSecret = server {
    clientSecretFile = "${builtins.storeDir}/00000000000000000000000000000000-secret";
    inherit settings;
  };
  srvWithWorkstation = nixos (withServerArgs { inherit settings; });

  serverChecks = [
    (check "server: defines only declared options, with values of their types (everything forced)" (
      forced (serverArgs srvCfg)
      && forced (serverArgs srvConfigFileCfg)
      && forced (serverArgs srvOwnNetrcCfg)
      && forced (serverArgs srvConfigFileAndSecretCfg)
    ) null)
    (check "server: no failed assertions with settings and clientSecretFile" (failedAssertions srv == [ ]) (
      failedAssertions srv
    ))
    (check "server: ExecStart runs `service-account` of the package" (
      hasPrefix "${exe} service-account" srvSC.ExecStart
      && hasSuffix "service-account --min-valid 4m" srvSC.ExecStart
    ) srvSC.ExecStart)
    (check "server: NIX_CACHE_LOGIN_CONFIG is exported" (
      srvService.environment.NIX_CACHE_LOGIN_CONFIG == "/etc/nix-cache-login/config.toml"
    ) srvService.environment)
    (check "server: token store and cache in /var/lib and /var/cache" (
      srvService.environment.XDG_STATE_HOME == "/var/lib"
      && srvService.environment.XDG_CACHE_HOME == "/var/cache"
      && srvSC.StateDirectory == "nix-cache-login"
      && srvSC.CacheDirectory == "nix-cache-login"
    ) srvService.environment)
    (check "server: LoadCredential carries the client secret" (
      srvSC.LoadCredential == [ "client-secret:/run/keys/nix-cache-secret" ]
    ) srvSC.LoadCredential)
    (check "server: settings get netrc_path and the credential path" (
      srvToml == settings // {
        netrc_path = "/etc/nix/netrc";
        client_secret_file = "$CREDENTIALS_DIRECTORY/client-secret";
      }
    ) srvToml)
    (check "server: oneshot after and wanting network-online.target" (
      srvSC.Type == "oneshot"
      && elem "network-online.target" srvService.after
      && elem "network-online.target" srvService.wants
    ) srvService.after)
    (check "server: hardened" (sandboxedRootService srvSC) srvSC)
    (check "server: may write only the netrc's directory" (srvSC.ReadWritePaths == [ "/etc/nix" ]) srvSC.ReadWritePaths)
    (check "server: timer with OnBootSec, OnUnitActiveSec, RandomizedDelaySec, enabled" (
      srvTimer.timerConfig.OnUnitActiveSec == "2min"
      && srvTimer.timerConfig.RandomizedDelaySec == "30s"
      && srvTimer.timerConfig ? OnBootSec
      && elem "timers.target" srvTimer.wantedBy
    ) srvTimer.timerConfig)
    (check "server: netrc placeholder for Lix and Determinate" (
      srv.systemd.tmpfiles.settings == placeholderAt "/etc/nix/netrc" && srv.systemd.tmpfiles.rules == [ ]
    ) srv.systemd.tmpfiles.settings)
    (check "server: package in environment.systemPackages" (elem pkgs.nix-cache-login srv.environment.systemPackages) null)
    (check "server: the /etc entry comes from configFile" (
      srvConfigFile.environment.etc."nix-cache-login/config.toml".source == "/srv/nix-cache-login.toml"
    ) srvConfigFile.environment.etc."nix-cache-login/config.toml".source)
    (check "server: configFile alone needs no clientSecretFile" (failedAssertions srvConfigFile == [ ]) (
      failedAssertions srvConfigFile
    ))
    (check "server: no LoadCredential without clientSecretFile" (
      srvConfigFile.systemd.services.nix-cache-login-server.serviceConfig.LoadCredential == [ ]
    ) null)
    (check "server: configFile with clientSecretFile passes the credential" (
      failedAssertions srvConfigFileAndSecret == [ ]
      &&
        srvConfigFileAndSecret.systemd.services.nix-cache-login-server.serviceConfig.LoadCredential == [
          "client-secret:/run/keys/s"
        ]
    ) (failedAssertions srvConfigFileAndSecret))
    (check "server: configFile and settings together fail an assertion" (anyContains "exactly one" (failedAssertions srvBoth)) (
      failedAssertions srvBoth
    ))
    (check "server: neither configFile nor settings fails an assertion" (anyContains "exactly one" (failedAssertions srvNeither)) (
      failedAssertions srvNeither
    ))
    (check "server: settings without clientSecretFile fail an assertion" (anyContains "clientSecretFile is required" (failedAssertions srvNoSecret)) (
      failedAssertions srvNoSecret
    ))
    (check "server: settings.netrc_path other than netrcPath fails an assertion" (anyContains "netrcPath" (failedAssertions srvNetrcMismatch)) (
      failedAssertions srvNetrcMismatch
    ))
    (check "server: netrcPath moves the netrc, the writable directory and the config" (
      failedAssertions srvOwnNetrc == [ ]
      &&
        srvOwnNetrc.systemd.services.nix-cache-login-server.serviceConfig.ReadWritePaths == [
          "/var/lib/nix-netrc"
        ]
      && srvOwnNetrc.environment.etc."nix-cache-login/config.toml".source.tomlValue.netrc_path
        == "/var/lib/nix-netrc/netrc"
      && srvOwnNetrc.systemd.tmpfiles.settings == { }
    ) srvOwnNetrc.systemd.services.nix-cache-login-server.serviceConfig.ReadWritePaths)
    (check "server: a netrcPath that ProtectHome hides fails an assertion" (
      anyContains "netrcPath must be an absolute path outside" (failedAssertions srvHomeNetrc)
    ) (failedAssertions srvHomeNetrc))
    (check "server: a client secret in the Nix store is warned about" (anyContains "Nix store" srvStoreSecret.warnings) srvStoreSecret.warnings)
    (check "server: workstation settings on the same host fail an assertion" (anyContains "both write" (failedAssertions srvWithWorkstation)) (
      failedAssertions srvWithWorkstation
    ))
  ];

  # ---------------------------------------------------------------- home-manager module
  hmArgs = system: {
    inherit system;
    modules = [
      ../../home-module.nix
      {
        programs.nix-cache-login = {
          enable = true;
          inherit settings;
        };
      }
    ];
  };
  hmLinux = homeManager (hmArgs "x86_64-linux");
  hmService = hmLinux.systemd.user.services.nix-cache-login-refresh;
  hmTimer = hmLinux.systemd.user.timers.nix-cache-login-refresh;
  hmDarwin = homeManager (hmArgs "aarch64-darwin");
  hmAgent = hmDarwin.launchd.agents.nix-cache-login-refresh;

  homeChecks = [
    (check "home-manager: defines only declared options, with values of their types (everything forced)" (
      force (h.homeManager (hmArgs "x86_64-linux")) && force (h.homeManager (hmArgs "aarch64-darwin"))
    ) null)
    (check "home-manager: package in home.packages" (elem pkgs.nix-cache-login hmLinux.home.packages) null)
    (check "home-manager: settings become xdg.configFile nix-cache-login/config.toml" (
      hmLinux.xdg.configFile."nix-cache-login/config.toml".source.tomlValue == settings
    ) null)
    (check "home-manager: the user unit runs `refresh`" (
      hmService.Service.ExecStart == [ "${exe} refresh --min-valid 20m" ]
    ) hmService.Service.ExecStart)
    (check "home-manager: SuccessExitStatus=3 and the XDG directories in the unit" (
      hmService.Service.SuccessExitStatus == "3"
      && elem "XDG_CONFIG_HOME=/home/alice/.config" hmService.Service.Environment
    ) hmService.Service)
    (check "home-manager: timer every 900s, wanted by timers.target" (
      hmTimer.Timer.OnUnitActiveSec == "900s" && hmTimer.Install.WantedBy == [ "timers.target" ]
    ) hmTimer)
    (check "home-manager: no launchd agent on Linux" (hmLinux.launchd.agents == { }) (attrNames hmLinux.launchd.agents))
    (check "home-manager: launchd agent on macOS runs `refresh` every 900s" (
      hmAgent.enable
      && hmAgent.config.ProgramArguments == [
        exe
        "refresh"
        "--min-valid"
        "20m"
      ]
      && hmAgent.config.StartInterval == 900
      && hmAgent.config.EnvironmentVariables.XDG_STATE_HOME == "/home/alice/.local/state"
    ) hmAgent.config.ProgramArguments)
    (check "home-manager: no systemd units on macOS" (hmDarwin.systemd.user.services == { }) null)
  ];

  # ---------------------------------------------------------------- VM test nodes
  # The node configurations of nixos-test*.nix: they must set only options that exist, with
  # values NixOS takes, and the modules must accept them.
  nodeArgs = {
    nodes.server.networking.primaryIPAddress = "192.168.1.2";
  };
  workstationTest = import ../../nixos-test.nix { inherit pkgs lib; };
  serverTest = import ../../nixos-test-server.nix { inherit pkgs lib; };
  nodeEval =
    node:
    h.nixos {
      modules = [ node ];
      extraArgs = nodeArgs;
    };
  clientNode = (nodeEval workstationTest.nodes.client).config;
  ciNode = (nodeEval serverTest.nodes.ci).config;
  serverNode = (nodeEval workstationTest.nodes.server).config;
  workstationScript = workstationTest.testScript {
    nodes.client.programs.nix-cache-login.package = pkgs.nix-cache-login;
  };
  realm = builtins.fromJSON (builtins.head serverNode.services.keycloak.realmFiles).text;
  loginClient = builtins.head (filter (c: c.clientId == "nix-cache-login") realm.clients);

  vmTestChecks = [
    (check "vm test: the nodes define only declared options, with values of their types (everything forced)" (
      force (nodeEval workstationTest.nodes.client)
      && force (nodeEval serverTest.nodes.ci)
      && force (nodeEval workstationTest.nodes.server)
    ) null)
    (check "vm test: client node evaluates, no failed assertions, bridge on" (
      failedAssertions clientNode == [ ]
      && clientNode.systemd.user.services ? nix-cache-login-refresh
      && clientNode.systemd.services ? nix-cache-login-bridge
      && clientNode.networking.extraHosts == "192.168.1.2 idp.test cache.test"
    ) (failedAssertions clientNode))
    (check "vm test: the client's daemon substitutes from the test cache only, trusts only root" (
      clientNode.nix.settings.substituters == [ "https://cache.test" ]
      && elem "cache.test-1:wYMrFi3t5G589C3QK1NQnyLLzGV52QWqbP6VEL2AO8o=" clientNode.nix.settings.trusted-public-keys
      && clientNode.nix.settings.trusted-users == [ "root" ]
      && clientNode.nix.settings.netrc-file == "/etc/nix/netrc"
    ) clientNode.nix.settings)
    (check "vm test: Keycloak's client is registered as http://127.0.0.1/callback, the config keeps callback_port 0" (
      loginClient.redirectUris == [ "http://127.0.0.1/callback" ]
      && !(clientNode.programs.nix-cache-login.settings ? callback_port)
    ) loginClient.redirectUris)
    (check "vm test: ci node evaluates, no failed assertions" (
      failedAssertions ciNode == [ ] && ciNode.systemd.services ? nix-cache-login-server
    ) (failedAssertions ciNode))
    (check "vm test: server node evaluates" (
      serverNode.services.keycloak.settings.hostname == "https://idp.test:8443"
      && serverNode.systemd.services ? cache-gate
    ) null)
    (check "vm test: workstation script logs in with the device flow and substitutes as alice through the daemon" (
      all (s: hasInfix s workstationScript) [
        "login --device"
        "approve-device"
        ''realise = f"nix-store --realise {payload}"''
        "client.succeed(as_alice(realise))"
        "client.fail(as_alice(realise))"
        "nix-cache-login logout"
      ]
      # Not as root on its own store with --option netrc-file (vm-common's `substitute`).
      && !(hasInfix "(substitute(" workstationScript)
    ) null)
    (check "vm test: server script starts the service" (
      hasInfix "systemctl start nix-cache-login-server.service" serverTest.testScript
    ) null)
  ];

  # ---------------------------------------------------------------- flake.nix and package.nix
  flake = import ../../flake.nix;
  nixpkgsInput = {
    lib = lib // {
      nixosSystem = _: throw "lib.nixosSystem is not available here (no nixpkgs)";
    };
    outPath = ./stub/nixpkgs;
  };
  self = flake.outputs {
    self = self // {
      outPath = toString ../..;
    };
    nixpkgs = nixpkgsInput;
  };
  systems = [
    "aarch64-darwin"
    "aarch64-linux"
    "x86_64-darwin"
    "x86_64-linux"
  ];
  pkg = self.packages.x86_64-linux.default;
  pkgArgs = pkg.buildRustPackageArgs;
  cargoToml = lib.importTOML ../../Cargo.toml;
  # The source filter, asked as builtins.path asks it (for files that exist).
  inSource = path: type: pkgArgs.src.filter (toString path) type;

  # The flake's module wrappers on a nixpkgs without the overlay: the package must come
  # from the flake.
  viaFlakeArgs = {
    pkgs = stubPkgs { withOverlay = false; };
    modules = [
      self.nixosModules.default
      self.nixosModules.server
      {
        programs.nix-cache-login.enable = true;
        services.nix-cache-login-server = {
          enable = true;
          clientSecretFile = "/run/keys/s";
          inherit settings;
        };
      }
    ];
  };
  viaFlake = nixos viaFlakeArgs;
  hmViaFlake = homeManager {
    pkgs = stubPkgs { withOverlay = false; };
    modules = [
      self.homeModules.default
      { programs.nix-cache-login.enable = true; }
    ];
  };
  # The flake's module and the file itself in one system: imported by path, it is one
  # module (declaring its options twice would fail).
  flakeAndFile = nixos {
    modules = [
      self.nixosModules.default
      ../../nixos-module.nix
      { programs.nix-cache-login.enable = true; }
    ];
  };

  flakeChecks = [
    (check "flake: description and the nixos-25.11 input" (
      flake.inputs.nixpkgs.url == "github:NixOS/nixpkgs/nixos-25.11" && flake ? description
    ) flake.inputs)
    (check "flake: every output for the four systems" (
      all (out: attrNames self.${out} == systems) [
        "packages"
        "apps"
        "checks"
        "devShells"
        "formatter"
      ]
    ) (attrNames self.packages))
    (check "flake: modules, overlay and the homeManagerModules alias" (
      builtins.isFunction self.nixosModules.default
      && builtins.isFunction self.nixosModules.server
      && builtins.isFunction self.homeModules.default
      && self.homeManagerModules == self.homeModules
      && builtins.isFunction self.overlays.default
    ) (attrNames self.nixosModules))
    (check "flake: modules import the module files by path" (
      (self.nixosModules.default { inherit pkgs; }).imports == [ ../../nixos-module.nix ]
      && (self.nixosModules.server { inherit pkgs; }).imports == [ ../../nixos-module-server.nix ]
      && (self.homeModules.default { inherit pkgs; }).imports == [ ../../home-module.nix ]
    ) null)
    (check "flake: the flake's module and the file imported together are one module" (
      failedAssertions flakeAndFile == [ ] && elem pkg flakeAndFile.environment.systemPackages
    ) null)
    (check "flake: `nix run` runs the binary" (
      self.apps.x86_64-linux.default.type == "app"
      && self.apps.x86_64-linux.default.program == "${pkg}/bin/nix-cache-login"
    ) self.apps.x86_64-linux.default.program)
    (check "flake: checks hold the package and, on Linux, the module evaluation and the VM tests" (
      attrNames self.checks.x86_64-linux == [
        "module-eval"
        "package"
        "vm-server"
        "vm-workstation"
      ]
      && attrNames self.checks.aarch64-darwin == [ "package" ]
      && self.checks.x86_64-linux.vm-workstation.nixosTest == ../../nixos-test.nix
      && self.checks.x86_64-linux.vm-server.nixosTest == ../../nixos-test-server.nix
    ) (attrNames self.checks.x86_64-linux))
    (check "flake: dev shell with cargo, rustc, clippy, rustfmt, rust-analyzer, nodejs" (
      map (p: p.name) self.devShells.x86_64-linux.default.mkShellArgs.packages == [
        "cargo"
        "rustc"
        "clippy"
        "rustfmt"
        "rust-analyzer"
        "nodejs"
      ]
      && elem "chromium" (map (p: p.name) self.devShells.x86_64-linux.browser.mkShellArgs.packages)
      && !(self.devShells.aarch64-darwin ? browser)
    ) (attrNames self.devShells.x86_64-linux))
    (check "flake: formatter" (self.formatter.x86_64-linux.name == "nixfmt-tree") null)
    (check "flake: modules imported through the flake default to the flake's package" (
      force (h.nixos viaFlakeArgs)
      && viaFlake.systemd.user.services.nix-cache-login-refresh.serviceConfig.ExecStart
        == "${pkg}/bin/nix-cache-login refresh --min-valid 20m"
      && hasPrefix "${pkg}/bin/nix-cache-login service-account"
        viaFlake.systemd.services.nix-cache-login-server.serviceConfig.ExecStart
      && elem pkg hmViaFlake.home.packages
    ) viaFlake.systemd.services.nix-cache-login-server.serviceConfig.ExecStart)
    (check "package: name and version from Cargo.toml" (
      pkg.pname == "nix-cache-login" && pkg.version == cargoToml.package.version
    ) pkg.name)
    (check "package: source is Cargo.toml, Cargo.lock, src/ and the bridge's units, nothing else" (
      pkgArgs.src.origSrc == ../..
      && inSource ../../Cargo.toml "regular"
      && inSource ../../Cargo.lock "regular"
      && inSource ../../src "directory"
      && inSource ../../src/main.rs "regular"
      && inSource ../../systemd/nix-cache-login-bridge.service "regular"
      && inSource ../../systemd/nix-cache-login-bridge.socket "regular"
      && !(inSource ../../README.md "regular")
      && !(inSource ../../flake.nix "regular")
      && !(inSource ../../tests "directory")
      && !(inSource ../../docs "directory")
    ) null)
    (check "package: cargoLock.lockFile is the committed Cargo.lock" (pkgArgs.cargoLock.lockFile == ../../Cargo.lock) null)
    (check "package: only the unit tests run in the sandbox, allowed to bind 127.0.0.1 on macOS" (
      elem "--lib" pkgArgs.cargoTestFlags && (pkgArgs.__darwinAllowLocalNetworking or false) == true
    ) pkgArgs.cargoTestFlags)
    (check "package: completions and man page installed from the binary" (
      all (s: hasInfix s pkgArgs.postInstall) [
        "installShellCompletion --cmd nix-cache-login"
        "completions bash"
        "completions zsh"
        "completions fish"
        "nix-cache-login\" man"
        "installManPage"
      ]
    ) pkgArgs.postInstall)
    (check "package: the bridge's units go to share/systemd/system with the binary's path" (
      all (s: hasInfix s pkgArgs.postInstall) [
        "for unit in nix-cache-login-bridge.socket nix-cache-login-bridge.service; do"
        ''install -Dm644 "systemd/$unit" "$out/share/systemd/system/$unit"''
        ''--replace-fail "@bindir@" "$out/bin"''
      ]
      && hasInfix "ExecStart=@bindir@/nix-cache-login bridge serve" (
        builtins.readFile ../../systemd/nix-cache-login-bridge.service
      )
    ) null)
    (check "package: meta" (
      pkg.meta.license == lib.licenses.gpl3Plus
      && pkg.meta.mainProgram == "nix-cache-login"
      && pkg.meta.platforms == lib.platforms.linux ++ lib.platforms.darwin
      && pkg.meta ? description
    ) pkg.meta.platforms)
  ];

  # Cross-compiling (the build platform cannot run the host's binaries): no completions,
  # the units all the same.
  crossPkg =
    (stubPkgs {
      system = "aarch64-linux";
      buildSystem = "x86_64-linux";
      withOverlay = false;
      overlays = [ self.overlays.default ];
    }).nix-cache-login;
  crossChecks = [
    (check "package: no completions when cross-compiling, the units all the same" (
      !(hasInfix "installShellCompletion" crossPkg.buildRustPackageArgs.postInstall)
      && hasInfix "share/systemd/system" crossPkg.buildRustPackageArgs.postInstall
    ) crossPkg.buildRustPackageArgs.postInstall)
  ];
in
workstationChecks
++ bridgeChecks
++ serverChecks
++ homeChecks
++ vmTestChecks
++ flakeChecks
++ crossChecks
++ [
  (check "the checks above ran" (length workstationChecks > 0 && length bridgeChecks > 0) null)
]
