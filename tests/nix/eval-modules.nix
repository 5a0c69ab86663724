# Evaluates the NixOS modules, the home-manager module, the VM test nodes, package.nix and
# flake.nix against the stand-ins in ./stub (no nixpkgs needed) and checks what they
# produce. Run by tests/nix/check.sh:
#
#   nix-instantiate --eval --strict --json tests/nix/eval-modules.nix
#
# The result is a list of { name; ok; detail; }; `detail` shows the value that was checked.
# Misspelled options and other definitions that must be refused are in ./negative.nix.
let
  lib = import ./stub/lib.nix;
  inherit (builtins)
    elem
    filter
    hasAttr
    length
    all
    attrNames
    ;
  inherit (lib) hasPrefix hasSuffix;

  stubPkgs = args: import ./stub/pkgs.nix ({ inherit lib; } // args);
  pkgs = stubPkgs { };
  exe = "${pkgs.nix-cache-login}/bin/nix-cache-login";

  nixos =
    {
      modules,
      pkgs ? stubPkgs { },
      extraArgs ? { },
    }:
    (lib.evalModules {
      modules = [ ./stub/nixos.nix ] ++ modules;
      specialArgs = {
        inherit pkgs;
      }
      // extraArgs;
    }).config;

  homeManager =
    {
      modules,
      system ? "x86_64-linux",
    }:
    (lib.evalModules {
      modules = [
        ./stub/home-manager.nix
        {
          home.username = "alice";
          home.homeDirectory = "/home/alice";
        }
      ]
      ++ modules;
      specialArgs.pkgs = stubPkgs { inherit system; };
    }).config;

  failedAssertions = config: map (a: a.message) (filter (a: !a.assertion) config.assertions);
  anyContains = needle: list: lib.isStringLike needle && builtins.any (m: lib.hasInfix needle m) list;

  check = name: ok: detail: { inherit name ok detail; };

  # Forces everything a module can define, so that a misspelled option anywhere in it fails
  # (evaluation is lazy: an option nobody reads is otherwise never looked at).
  forceNixos =
    c:
    builtins.deepSeq [
      c.assertions
      c.warnings
      c.environment
      c.systemd
      c.nix
      c.users
      (c.programs or { })
      (c.services.nix-cache-login-server or { })
    ] true;
  forceHome =
    c:
    builtins.deepSeq [
      c.assertions
      c.warnings
      c.home
      c.xdg
      c.systemd
      c.launchd
      c.programs
    ] true;

  settings = {
    issuer = "https://sso.example.com/realms/nix";
    client_id = "nix-cache";
    cache_host = "cache.example.com";
  };

  # ---------------------------------------------------------------- workstation module
  workstation = nixos {
    modules = [
      ../../nixos-module.nix
      {
        programs.nix-cache-login = {
          enable = true;
          inherit settings;
          netrcPlaceholder.enable = true;
        };
      }
    ];
  };
  wsService = workstation.systemd.user.services.nix-cache-login-refresh;
  wsTimer = workstation.systemd.user.timers.nix-cache-login-refresh;
  wsEtc = workstation.environment.etc."nix-cache-login/config.toml";

  workstationMinimal = nixos {
    modules = [
      ../../nixos-module.nix
      { programs.nix-cache-login.enable = true; }
    ];
  };

  workstationNoTimer = nixos {
    modules = [
      ../../nixos-module.nix
      {
        programs.nix-cache-login = {
          enable = true;
          refresh.enable = false;
        };
      }
    ];
  };

  workstationDisabled = nixos {
    modules = [
      ../../nixos-module.nix
      { programs.nix-cache-login.settings = settings; }
    ];
  };

  workstationChecks = [
    (check "workstation: defines only declared options (everything forced)" (
      forceNixos workstation
      && forceNixos workstationMinimal
      && forceNixos workstationNoTimer
      && forceNixos workstationDisabled
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
    (check "workstation: netrc placeholder is an empty 0600 file made by tmpfiles" (
      workstation.systemd.tmpfiles.rules == [ "f /etc/nix/netrc 0600 root root -" ]
    ) workstation.systemd.tmpfiles.rules)
    (check "workstation: no placeholder unless asked" (workstationMinimal.systemd.tmpfiles.rules == [ ]) workstationMinimal.systemd.tmpfiles.rules)
    (check "workstation: does not set nix's netrc-file" (workstation.nix.settings == { }) workstation.nix.settings)
    (check "workstation: refresh.enable = false drops the user units" (
      workstationNoTimer.systemd.user.services == { } && workstationNoTimer.systemd.user.timers == { }
    ) (attrNames workstationNoTimer.systemd.user.services))
    (check "workstation: nothing happens while disabled" (
      workstationDisabled.environment.systemPackages == [ ]
      && workstationDisabled.environment.etc == { }
      && workstationDisabled.systemd.user.services == { }
    ) (attrNames workstationDisabled.environment.etc))
  ];

  # ---------------------------------------------------------------- server module
  server =
    cfg:
    nixos {
      modules = [
        ../../nixos-module-server.nix
        { services.nix-cache-login-server = { enable = true; } // cfg; }
      ];
    };

  srv = server {
    clientSecretFile = "/run/keys/nix-cache-secret";
    inherit settings;
  };
  srvService = srv.systemd.services.nix-cache-login-server;
  srvSC = srvService.serviceConfig;
  srvTimer = srv.systemd.timers.nix-cache-login-server;
  srvToml = srv.environment.etc."nix-cache-login/config.toml".source.tomlValue;

  srvConfigFile = server { configFile = "/srv/nix-cache-login.toml"; };
  srvConfigFileAndSecret = server {
    configFile = "/srv/nix-cache-login.toml";
    clientSecretFile = "/run/keys/s";
  };
  srvBoth = server {
    configFile = "/srv/nix-cache-login.toml";
    clientSecretFile = "/run/keys/s";
    inherit settings;
  };
  srvNeither = server { clientSecretFile = "/run/keys/s"; };
  srvNoSecret = server { inherit settings; };
  srvNetrcMismatch = server {
    clientSecretFile = "/run/keys/s";
    settings = settings // {
      netrc_path = "/root/netrc";
    };
  };
  srvOwnNetrc = server {
    clientSecretFile = "/run/keys/s";
    inherit settings;
    netrcPath = "/var/lib/nix-netrc/netrc";
    createNetrcPlaceholder = false;
  };
  srvStoreSecret = server {
    clientSecretFile = "${builtins.storeDir}/00000000000000000000000000000000-secret";
    inherit settings;
  };
  srvWithWorkstation = nixos {
    modules = [
      ../../nixos-module.nix
      ../../nixos-module-server.nix
      {
        programs.nix-cache-login = {
          enable = true;
          inherit settings;
        };
        services.nix-cache-login-server = {
          enable = true;
          clientSecretFile = "/run/keys/s";
          inherit settings;
        };
      }
    ];
  };

  serverChecks = [
    (check "server: defines only declared options (everything forced)" (
      forceNixos srv && forceNixos srvConfigFile && forceNixos srvOwnNetrc && forceNixos srvConfigFileAndSecret
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
    (check "server: hardened" (
      srvSC.ProtectSystem == "strict"
      && srvSC.ProtectHome == true
      && srvSC.NoNewPrivileges == true
      && srvSC.PrivateTmp == true
      && srvSC.UMask == "0077"
      && srvSC.RestrictAddressFamilies == [
        "AF_INET"
        "AF_INET6"
        "AF_UNIX"
      ]
      && elem "@system-service" srvSC.SystemCallFilter
    ) srvSC)
    (check "server: may write only the netrc's directory" (srvSC.ReadWritePaths == [ "/etc/nix" ]) srvSC.ReadWritePaths)
    (check "server: timer with OnBootSec, OnUnitActiveSec, RandomizedDelaySec, enabled" (
      srvTimer.timerConfig.OnUnitActiveSec == "2min"
      && srvTimer.timerConfig.RandomizedDelaySec == "30s"
      && srvTimer.timerConfig ? OnBootSec
      && elem "timers.target" srvTimer.wantedBy
    ) srvTimer.timerConfig)
    (check "server: netrc placeholder for Lix and Determinate" (
      srv.systemd.tmpfiles.rules == [ "f /etc/nix/netrc 0600 root root -" ]
    ) srv.systemd.tmpfiles.rules)
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
      && srvOwnNetrc.systemd.tmpfiles.rules == [ ]
    ) srvOwnNetrc.systemd.services.nix-cache-login-server.serviceConfig.ReadWritePaths)
    (check "server: a client secret in the Nix store is warned about" (anyContains "Nix store" srvStoreSecret.warnings) srvStoreSecret.warnings)
    (check "server: workstation settings on the same host fail an assertion" (anyContains "both write" (failedAssertions srvWithWorkstation)) (
      failedAssertions srvWithWorkstation
    ))
  ];

  # ---------------------------------------------------------------- home-manager module
  hmLinux = homeManager {
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
  hmService = hmLinux.systemd.user.services.nix-cache-login-refresh;
  hmTimer = hmLinux.systemd.user.timers.nix-cache-login-refresh;

  hmDarwin = homeManager {
    system = "aarch64-darwin";
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
  hmAgent = hmDarwin.launchd.agents.nix-cache-login-refresh;

  homeChecks = [
    (check "home-manager: defines only declared options (everything forced)" (
      forceHome hmLinux && forceHome hmDarwin
    ) null)
    (check "home-manager: package in home.packages" (elem pkgs.nix-cache-login hmLinux.home.packages) null)
    (check "home-manager: settings become xdg.configFile nix-cache-login/config.toml" (
      hmLinux.xdg.configFile."nix-cache-login/config.toml".source.tomlValue == settings
    ) null)
    (check "home-manager: the user unit runs `refresh`" (
      hmService.Service.ExecStart == "${exe} refresh --min-valid 20m"
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
  # The node configurations of nixos-test*.nix, through the stand-in NixOS: they must set
  # only options that exist, and the modules must accept them.
  testPkgs = stubPkgs { };
  nodeArgs = {
    nodes.server.networking.primaryIPAddress = "192.168.1.2";
  };
  workstationTest = import ../../nixos-test.nix {
    pkgs = testPkgs;
    inherit lib;
  };
  serverTest = import ../../nixos-test-server.nix {
    pkgs = testPkgs;
    inherit lib;
  };
  clientNode = nixos {
    modules = [ workstationTest.nodes.client ];
    extraArgs = nodeArgs;
  };
  ciNode = nixos {
    modules = [ serverTest.nodes.ci ];
    extraArgs = nodeArgs;
  };
  serverNode = nixos {
    modules = [ workstationTest.nodes.server ];
    extraArgs = nodeArgs;
  };
  workstationScript = workstationTest.testScript {
    nodes.client.programs.nix-cache-login.package = testPkgs.nix-cache-login;
  };

  vmTestChecks = [
    (check "vm test: the nodes define only declared options (everything forced)" (
      forceNixos clientNode && forceNixos ciNode
    ) null)
    (check "vm test: client node evaluates, no failed assertions" (
      failedAssertions clientNode == [ ]
      && clientNode.systemd.user.services ? nix-cache-login-refresh
      && clientNode.networking.extraHosts == "192.168.1.2 idp.test cache.test"
    ) (failedAssertions clientNode))
    (check "vm test: ci node evaluates, no failed assertions" (
      failedAssertions ciNode == [ ] && ciNode.systemd.services ? nix-cache-login-server
    ) (failedAssertions ciNode))
    (check "vm test: server node evaluates" (
      serverNode.services.keycloak.settings.hostname == "https://idp.test:8443"
      && serverNode.systemd.services ? cache-gate
    ) null)
    (check "vm test: workstation script logs in with the device flow" (
      lib.hasInfix "login --device" workstationScript && lib.hasInfix "approve-device" workstationScript
    ) null)
    (check "vm test: server script starts the service" (
      lib.hasInfix "systemctl start nix-cache-login-server.service" serverTest.testScript
    ) null)
  ];

  # ---------------------------------------------------------------- flake.nix and package.nix
  flake = import ../../flake.nix;
  nixpkgsInput = {
    lib = lib // {
      nixosSystem = _: throw "lib.nixosSystem is not available in the stand-in";
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

  # The flake's module wrappers on a nixpkgs without the overlay: the package must come
  # from the flake.
  viaFlake = nixos {
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
  hmViaFlake =
    (lib.evalModules {
      modules = [
        ./stub/home-manager.nix
        {
          home.username = "alice";
          home.homeDirectory = "/home/alice";
        }
        self.homeModules.default
        { programs.nix-cache-login.enable = true; }
      ];
      specialArgs.pkgs = stubPkgs { withOverlay = false; };
    }).config;

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
      viaFlake.systemd.user.services.nix-cache-login-refresh.serviceConfig.ExecStart
      == "${pkg}/bin/nix-cache-login refresh --min-valid 20m"
      && lib.hasPrefix "${pkg}/bin/nix-cache-login service-account"
        viaFlake.systemd.services.nix-cache-login-server.serviceConfig.ExecStart
      && elem pkg hmViaFlake.home.packages
    ) viaFlake.systemd.services.nix-cache-login-server.serviceConfig.ExecStart)
    (check "package: name and version from Cargo.toml" (
      pkg.pname == "nix-cache-login" && pkg.version == cargoToml.package.version
    ) pkg.name)
    (check "package: source is Cargo.toml, Cargo.lock, src/ (and build.rs if any)" (
      pkgArgs.src.root == ../..
      && pkgArgs.src.fileset == [
        ../../Cargo.toml
        ../../Cargo.lock
        ../../src
        {
          _type = "maybeMissing";
          path = ../../build.rs;
        }
      ]
    ) (map toString (filter builtins.isPath pkgArgs.src.fileset)))
    (check "package: cargoLock.lockFile is the committed Cargo.lock" (pkgArgs.cargoLock.lockFile == ../../Cargo.lock) null)
    (check "package: only the unit tests run in the sandbox" (elem "--lib" pkgArgs.cargoTestFlags) pkgArgs.cargoTestFlags)
    (check "package: completions and man page installed from the binary" (
      all (s: lib.hasInfix s pkgArgs.postInstall) [
        "installShellCompletion --cmd nix-cache-login"
        "completions bash"
        "completions zsh"
        "completions fish"
        "nix-cache-login\" man"
        "installManPage"
      ]
    ) pkgArgs.postInstall)
    (check "package: meta" (
      pkg.meta.license == lib.licenses.gpl3Plus
      && pkg.meta.mainProgram == "nix-cache-login"
      && pkg.meta.platforms == lib.platforms.linux ++ lib.platforms.darwin
      && pkg.meta ? description
    ) pkg.meta.platforms)
  ];

  # Cross-compiling (build platform cannot run the host's binaries): no completions.
  crossPkg =
    (import ./stub/pkgs.nix {
      inherit lib;
      withOverlay = false;
      overlays = [
        (final: prev: {
          stdenv = prev.stdenv // {
            buildPlatform = prev.stdenv.buildPlatform // {
              canExecute = _: false;
            };
          };
        })
        self.overlays.default
      ];
    }).nix-cache-login;
  crossChecks = [
    (check "package: no completions when cross-compiling" (crossPkg.buildRustPackageArgs.postInstall == "") null)
  ];
in
workstationChecks
++ serverChecks
++ homeChecks
++ vmTestChecks
++ flakeChecks
++ crossChecks
++ [
  (check "the checks above ran" (length workstationChecks > 0) null)
]
