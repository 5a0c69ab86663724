# Configurations that must NOT evaluate (or, for a failed assertion, must not build), with
# the error each must give, under nixpkgs' real module system. tests/nix/check.sh lists them
# (`cases`) and evaluates each one (`run NAME`), expecting failure and the text.
let
  h = import ./harness.nix;
  inherit (h) lib stubPkgs;

  # A configuration is forced the way check.sh forces every working one (harness.nix).
  nixos = args: h.nixos args;
  homeManager = modules: h.homeManager { inherit modules; };

  # As NixOS's system.build.toplevel does: a failed assertion stops the build.
  assertionsHold =
    eval:
    let
      failed = h.failedAssertions eval.config;
    in
    if failed == [ ] then true else throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}";

  settings = {
    issuer = "https://sso.example.com/realms/nix";
    client_id = "nix-cache";
    cache_host = "cache.example.com";
  };

  workstation =
    cfg:
    nixos {
      modules = [
        ../../nixos-module.nix
        { programs.nix-cache-login = { enable = true; } // cfg; }
      ];
    };

  # The server module, on, with working settings and more of `cfg`; `extraModules` beside it.
  server =
    cfg: extraModules:
    nixos {
      modules = [
        ../../nixos-module-server.nix
        {
          services.nix-cache-login-server = {
            enable = true;
            inherit settings;
          }
          // cfg;
        }
      ]
      ++ extraModules;
    };

  cases = {
    workstation-misspelled-option = {
      expect = "The option `programs.nix-cache-login.enabel' does not exist";
      eval = nixos {
        modules = [
          ../../nixos-module.nix
          { programs.nix-cache-login.enabel = true; }
        ];
      };
    };

    server-misspelled-option = {
      expect = "The option `services.nix-cache-login-server.clientSecretFiel' does not exist";
      eval = server { clientSecretFiel = "/run/keys/s"; } [ ];
    };

    home-misspelled-option = {
      expect = "The option `programs.nix-cache-login.refresh.minValidd' does not exist";
      eval = homeManager [
        ../../home-module.nix
        {
          programs.nix-cache-login = {
            enable = true;
            refresh.minValidd = "30m";
          };
        }
      ];
    };

    bridge-misspelled-option = {
      expect = "The option `programs.nix-cache-login.daemonBridge.allowedGroup' does not exist";
      eval = workstation {
        inherit settings;
        daemonBridge = {
          enable = true;
          allowedGroup = [ "nix-users" ];
        };
      };
    };

    # The host options are checked too: a typo in a unit attribute fails.
    host-misspelled-option = {
      expect = "The option `systemd.services.example.serviceConfg' does not exist";
      eval = nixos {
        modules = [ { systemd.services.example.serviceConfg.ExecStart = "/bin/true"; } ];
      };
    };

    # ... and so does a value systemd would not take (NixOS checks Type= and Restart=).
    host-wrong-unit-value = {
      expect = "A definition for option `systemd.services.example.serviceConfig' is not of type `attribute set of (systemd option)'";
      eval = nixos {
        modules = [ { systemd.services.example.serviceConfig.Type = "oneshoot"; } ];
      };
    };

    wrong-type = {
      expect = "A definition for option `programs.nix-cache-login.refresh.minValid' is not of type `string'";
      eval = workstation { refresh.minValid = 20; };
    };

    bridge-wrong-type = {
      expect = "A definition for option `programs.nix-cache-login.daemonBridge.allowedUsers' is not of type `list of string'";
      eval = workstation {
        inherit settings;
        daemonBridge = {
          enable = true;
          allowedUsers = "alice";
        };
      };
    };

    conflicting-definitions = {
      expect = "The option `services.nix-cache-login-server.netrcPath' has conflicting definition values";
      eval =
        server
          {
            clientSecretFile = "/run/keys/s";
            netrcPath = "/etc/nix/netrc";
          }
          [ { services.nix-cache-login-server.netrcPath = "/var/lib/netrc"; } ];
    };

    # Without the overlay (and not through the flake's module), there is no default package.
    no-package-without-overlay = {
      expect = "nix-cache-login cannot be found in pkgs";
      eval = nixos {
        pkgs = stubPkgs { withOverlay = false; };
        modules = [
          ../../nixos-module.nix
          { programs.nix-cache-login.enable = true; }
        ];
      };
    };

    # The home-manager module in a NixOS system (or the other way round) is refused by name.
    home-module-in-nixos = {
      expect = "cannot be imported into a module evaluation that expects class";
      eval = nixos {
        modules = [ ../../home-module.nix ];
      };
    };

    # The removed owner option stops the build with the reason.
    placeholder-owner-removed = {
      expect = "no longer has any effect; please remove it";
      build = assertionsHold;
      eval = workstation {
        netrcPlaceholder = {
          enable = true;
          owner = "alice";
        };
      };
    };

    # A bridge that would accept no token stops the build.
    bridge-without-hosts = {
      expect = "programs.nix-cache-login.daemonBridge.cacheHosts is empty";
      build = assertionsHold;
      eval = workstation {
        settings = removeAttrs settings [ "cache_host" ];
        daemonBridge.enable = true;
      };
    };
  };
in
{
  # "NAME|EXPECTED" lines, as a list of strings (free of quotes and backslashes so that
  # check.sh can read the JSON without a JSON parser).
  cases = map (name: "${name}|${cases.${name}.expect}") (builtins.attrNames cases);

  # Forces everything the configuration defines (or builds it); this must fail.
  run =
    name:
    let
      case = cases.${name};
    in
    (case.build or h.force) case.eval;
}
