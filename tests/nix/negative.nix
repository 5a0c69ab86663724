# Configurations that must NOT evaluate, with the error each must give. tests/nix/check.sh
# lists them (`cases`) and evaluates each one (`run NAME`), expecting failure and the text.
let
  lib = import ./stub/lib.nix;
  stubPkgs = args: import ./stub/pkgs.nix ({ inherit lib; } // args);

  nixos =
    {
      modules,
      pkgs ? stubPkgs { },
    }:
    (lib.evalModules {
      modules = [ ./stub/nixos.nix ] ++ modules;
      specialArgs.pkgs = pkgs;
    }).config;

  homeManager =
    modules:
    (lib.evalModules {
      modules = [
        ./stub/home-manager.nix
        {
          home.username = "alice";
          home.homeDirectory = "/home/alice";
        }
      ]
      ++ modules;
      specialArgs.pkgs = stubPkgs { };
    }).config;

  settings = {
    issuer = "https://sso.example.com/realms/nix";
    client_id = "nix-cache";
    cache_host = "cache.example.com";
  };

  cases = {
    workstation-misspelled-option = {
      force = c: c.programs.nix-cache-login.enable;
      expect = "The option `programs.nix-cache-login.enabel' does not exist";
      config = nixos {
        modules = [
          ../../nixos-module.nix
          { programs.nix-cache-login.enabel = true; }
        ];
      };
    };

    server-misspelled-option = {
      force = c: c.services.nix-cache-login-server.enable;
      expect = "The option `services.nix-cache-login-server.clientSecretFiel' does not exist";
      config = nixos {
        modules = [
          ../../nixos-module-server.nix
          {
            services.nix-cache-login-server = {
              enable = true;
              clientSecretFiel = "/run/keys/s";
              inherit settings;
            };
          }
        ];
      };
    };

    home-misspelled-option = {
      force = c: c.programs.nix-cache-login.refresh.minValid;
      expect = "The option `programs.nix-cache-login.refresh.minValidd' does not exist";
      config = homeManager [
        ../../home-module.nix
        {
          programs.nix-cache-login = {
            enable = true;
            refresh.minValidd = "30m";
          };
        }
      ];
    };

    # The stand-in's host options are checked too: a typo in a unit attribute fails.
    host-misspelled-option = {
      force = c: c.systemd.services.example.serviceConfig;
      expect = "The option `systemd.services.example.serviceConfg' does not exist";
      config = nixos {
        modules = [ { systemd.services.example.serviceConfg.ExecStart = "/bin/true"; } ];
      };
    };

    wrong-type = {
      force = c: c.systemd.user.services.nix-cache-login-refresh.serviceConfig.ExecStart;
      expect = "A definition for option `programs.nix-cache-login.refresh.minValid' is not of type `string'";
      config = nixos {
        modules = [
          ../../nixos-module.nix
          {
            programs.nix-cache-login = {
              enable = true;
              refresh.minValid = 20;
            };
          }
        ];
      };
    };

    conflicting-definitions = {
      force = c: c.systemd.services.nix-cache-login-server.serviceConfig.ReadWritePaths;
      expect = "The option `services.nix-cache-login-server.netrcPath' has conflicting definition values";
      config = nixos {
        modules = [
          ../../nixos-module-server.nix
          {
            services.nix-cache-login-server = {
              enable = true;
              clientSecretFile = "/run/keys/s";
              inherit settings;
              netrcPath = "/etc/nix/netrc";
            };
          }
          { services.nix-cache-login-server.netrcPath = "/var/lib/netrc"; }
        ];
      };
    };

    # Without the overlay (and not through the flake's module), there is no default package.
    no-package-without-overlay = {
      force = c: c.environment.systemPackages;
      expect = "nix-cache-login cannot be found in pkgs";
      config = nixos {
        pkgs = stubPkgs { withOverlay = false; };
        modules = [
          ../../nixos-module.nix
          { programs.nix-cache-login.enable = true; }
        ];
      };
    };
  };
in
{
  # "NAME|EXPECTED" lines, as a list of strings (free of quotes and backslashes so that
  # check.sh can read the JSON without a JSON parser).
  cases = map (name: "${name}|${cases.${name}.expect}") (builtins.attrNames cases);

  # Forces what the case is about; evaluating this must fail.
  run =
    name:
    let
      case = cases.${name};
    in
    builtins.deepSeq (case.force case.config) true;
}
