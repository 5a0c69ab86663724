{
  description = "nix-cache-login: keep a valid OIDC access token for a private Nix binary cache in the netrc Nix reads";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f system);

      # nixpkgs with this flake's overlay, so that `pkgs.nix-cache-login` exists (the modules'
      # default package) inside the VM tests, whose nodes share this package set.
      pkgsFor = forAllSystems (
        system:
        import nixpkgs {
          inherit system;
          overlays = [ self.overlays.default ];
        }
      );

      # The modules default to pkgs.nix-cache-login, which exists only with the overlay.
      # Imported through the flake, they default to this flake's build instead, which is
      # built with the nixpkgs pinned in flake.lock (its rustc is new enough for the crate).
      defaultPackage =
        pkgs: lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
    in
    {
      overlays.default = final: prev: {
        nix-cache-login = final.callPackage ./package.nix { };
      };

      packages = forAllSystems (system: {
        default = pkgsFor.${system}.nix-cache-login;
        nix-cache-login = pkgsFor.${system}.nix-cache-login;
      });

      apps = forAllSystems (system: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${system}.default;
          meta.description = "Log in to the Nix binary cache and keep the netrc token fresh";
        };
      });

      nixosModules = {
        default =
          { pkgs, ... }:
          {
            imports = [ ./nixos-module.nix ];
            programs.nix-cache-login.package = defaultPackage pkgs;
          };
        server =
          { pkgs, ... }:
          {
            imports = [ ./nixos-module-server.nix ];
            services.nix-cache-login-server.package = defaultPackage pkgs;
          };
      };

      homeModules.default =
        { pkgs, ... }:
        {
          imports = [ ./home-module.nix ];
          programs.nix-cache-login.package = defaultPackage pkgs;
        };
      # The older name that home-manager documentation and flakes still use.
      homeManagerModules = self.homeModules;

      checks = forAllSystems (
        system:
        let
          pkgs = pkgsFor.${system};

          # Evaluates both NixOS modules (the workstation one with the daemon bridge) inside a
          # real (container) NixOS configuration and fails when one of their assertions
          # fails; writes a few rendered values out so that a change in them is visible in
          # the check's output.
          moduleEval =
            let
              nixos = lib.nixosSystem {
                inherit system;
                modules = [
                  self.nixosModules.default
                  self.nixosModules.server
                  {
                    boot.isContainer = true;
                    system.stateVersion = "25.11";
                    programs.nix-cache-login = {
                      enable = true;
                      netrcPlaceholder.enable = true;
                      daemonBridge = {
                        enable = true;
                        issuer = "https://sso.example.com/realms/nix";
                        clientId = "nix-cache-login";
                        cacheHosts = [ "people.cache.example.com" ];
                      };
                    };
                    services.nix-cache-login-server = {
                      enable = true;
                      clientSecretFile = "/run/keys/nix-cache-login-secret";
                      settings = {
                        issuer = "https://sso.example.com/realms/nix";
                        client_id = "nix-cache";
                        cache_host = "cache.example.com";
                      };
                    };
                  }
                ];
              };
              inherit (nixos) config;
              failed = lib.filter (a: !a.assertion) config.assertions;
            in
            if failed != [ ] then
              throw (lib.concatMapStringsSep "\n" (a: a.message) failed)
            else
              pkgs.writeText "nix-cache-login-module-eval" ''
                ${config.systemd.units."nix-cache-login-server.service".text}
                ${config.systemd.units."nix-cache-login-server.timer".text}
                ${config.systemd.user.units."nix-cache-login-refresh.service".text}
                ${config.systemd.user.units."nix-cache-login-refresh.timer".text}
                ${config.systemd.units."nix-cache-login-bridge.socket".text}
                ${config.systemd.units."nix-cache-login-bridge.service".text}
                ${config.environment.etc."nix-cache-login/bridge.toml".source}
              '';
        in
        {
          package = self.packages.${system}.default;
        }
        # NixOS only exists for Linux (and the unit texts refer to the Linux build).
        // lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux {
          module-eval = moduleEval;
          vm-workstation = pkgs.testers.runNixOSTest ./nixos-test.nix;
          vm-server = pkgs.testers.runNixOSTest ./nixos-test-server.nix;
        }
      );

      devShells = forAllSystems (
        system:
        let
          pkgs = pkgsFor.${system};
          tools = [
            pkgs.cargo
            pkgs.rustc
            pkgs.clippy
            pkgs.rustfmt
            pkgs.rust-analyzer
            # The OpenID provider the integration tests start (tests/idp).
            pkgs.nodejs
          ];
        in
        {
          default = pkgs.mkShell {
            packages = tools;
            RUST_SRC_PATH = "${pkgs.rustPlatform.rustLibSrc}";
          };
        }
        # The browser-flow integration tests also drive a headless Chromium; it is a large
        # download, so it lives in its own shell: `nix develop .#browser`.
        // lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux {
          browser = pkgs.mkShell {
            packages = tools ++ [ pkgs.chromium ];
            RUST_SRC_PATH = "${pkgs.rustPlatform.rustLibSrc}";
          };
        }
      );

      formatter = forAllSystems (system: pkgsFor.${system}.nixfmt-tree);
    };
}
