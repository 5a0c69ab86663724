# A stand-in for a nixpkgs package set: just what the modules, package.nix and flake.nix
# reach for. Derivations are plain attribute sets with a fake store path; nothing is built.
#
#   import ./pkgs.nix { lib; system; withOverlay; }
# withOverlay: whether `nix-cache-login` is in the set (as with the flake's overlay).
{
  lib,
  system ? "x86_64-linux",
  withOverlay ? true,
  overlays ? [ ],
}:

let
  isDarwin = lib.hasSuffix "-darwin" system;

  fakeDrv =
    name: extra:
    {
      type = "derivation";
      inherit name system;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
    }
    // extra;

  platform = {
    inherit system isDarwin;
    isLinux = !isDarwin;
    canExecute = other: other.system == system;
  };

  callPackageWith =
    autoArgs: fn: args:
    let
      f = if builtins.isFunction fn then fn else import fn;
    in
    f (builtins.intersectAttrs (builtins.functionArgs f) autoArgs // args);

  base = final: {
    inherit lib;
    callPackage = callPackageWith final;

    stdenv = {
      hostPlatform = platform;
      buildPlatform = platform;
      isLinux = !isDarwin;
      inherit isDarwin;
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

    formats.toml =
      { }:
      {
        type = lib.types.attrsOf lib.types.anything;
        generate = name: value: fakeDrv name { tomlValue = value; };
      };

    writeText = name: text: fakeDrv name { inherit text; };
    writeScriptBin = name: text: fakeDrv name { inherit text; };
    runCommand =
      name: env: script:
      fakeDrv name { inherit env script; };
    python3 = fakeDrv "python3" { interpreter = "/nix/store/00000000000000000000000000000000-python3/bin/python3"; };
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

  withOwn = final: prev: lib.optionalAttrs withOverlay {
    nix-cache-login = fakeDrv "nix-cache-login-0.1.0" {
      pname = "nix-cache-login";
      meta.mainProgram = "nix-cache-login";
    };
  };

  # nixpkgs' overlay fixpoint, small.
  apply = builtins.foldl' (
    f: overlay: final:
    let
      prev = f final;
    in
    prev // overlay final prev
  ) base ([ withOwn ] ++ overlays);
  fix = f: let x = f x; in x;
in
fix apply
