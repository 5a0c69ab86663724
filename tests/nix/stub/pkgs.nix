# A stand-in for a nixpkgs package set, built on nixpkgs' real lib: just what the modules,
# package.nix and flake.nix reach for. Platforms come from lib.systems.elaborate and
# callPackage is lib.callPackageWith, as in nixpkgs; derivations are plain attribute sets
# with a fake store path, so nothing is built.
#
#   import ./pkgs.nix { lib; system; buildSystem; withOverlay; overlays; }
# withOverlay: whether `nix-cache-login` is in the set (as with the flake's overlay).
# buildSystem: the build machine (another one than `system` means cross-compiling).
{
  lib,
  system ? "x86_64-linux",
  buildSystem ? system,
  withOverlay ? true,
  overlays ? [ ],
}:

let
  hostPlatform = lib.systems.elaborate system;
  buildPlatform = lib.systems.elaborate buildSystem;

  fakeDrv =
    name: extra:
    {
      type = "derivation";
      inherit name system;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
    }
    // extra;

  base = final: {
    inherit lib;
    callPackage = lib.callPackageWith final;

    stdenv = {
      inherit hostPlatform buildPlatform;
      inherit (hostPlatform) isLinux isDarwin;
    };

    # What package.nix passes is returned as the "derivation", so that the checks can look
    # at it.
    rustPlatform = {
      buildRustPackage =
        args:
        fakeDrv "${args.pname}-${args.version}" {
          inherit (args) pname version meta;
          buildRustPackageArgs = args;
        };
      rustLibSrc = fakeDrv "rust-lib-src" { };
    };

    installShellFiles = fakeDrv "install-shell-files" { };

    # pkgs/pkgs-lib/formats.nix: the type of `formats.toml { }` as nixpkgs has it; the
    # "file" keeps the value so that the checks can read it.
    formats.toml =
      { }:
      {
        type =
          let
            valueType =
              lib.types.oneOf [
                lib.types.bool
                lib.types.int
                lib.types.float
                lib.types.str
                lib.types.path
                (lib.types.attrsOf valueType)
                (lib.types.listOf valueType)
              ]
              // {
                description = "TOML value";
              };
          in
          valueType;
        generate = name: value: fakeDrv name { tomlValue = value; };
      };

    writeText = name: text: fakeDrv name { inherit text; };
    writeScriptBin = name: text: fakeDrv name { inherit text; };
    runCommand =
      name: env: script:
      fakeDrv name { inherit env script; };
    python3 = fakeDrv "python3" {
      interpreter = "/nix/store/00000000000000000000000000000000-python3/bin/python3";
    };
    openssl = fakeDrv "openssl" { };
    curl = fakeDrv "curl" { };
    mkShell = args: fakeDrv "nix-shell" { mkShellArgs = args; };
    testers.runNixOSTest = test: fakeDrv "vm-test" { nixosTest = test; };

    cargo = fakeDrv "cargo" { };
    rustc = fakeDrv "rustc" { };
    clippy = fakeDrv "clippy" { };
    rustfmt = fakeDrv "rustfmt" { };
    rust-analyzer = fakeDrv "rust-analyzer" { };
    nodejs = fakeDrv "nodejs" { };
    chromium = fakeDrv "chromium" { };
    nixfmt-tree = fakeDrv "nixfmt-tree" { };
  };

  withOwn =
    final: prev:
    lib.optionalAttrs withOverlay {
      nix-cache-login = fakeDrv "nix-cache-login-0.1.0" {
        pname = "nix-cache-login";
        meta.mainProgram = "nix-cache-login";
      };
    };
in
lib.fix (lib.extends (lib.composeManyExtensions ([ withOwn ] ++ overlays)) base)
