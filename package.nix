# The nix-cache-login package. Used by flake.nix (packages, overlays) and callable from any
# nixpkgs whose rustc is at least the crate's rust-version (1.89; nixos-25.11 is):
#
#   pkgs.callPackage ./package.nix { }
{
  lib,
  stdenv,
  rustPlatform,
  installShellFiles,
}:

let
  cargoToml = lib.importTOML ./Cargo.toml;
  canRunBinary = stdenv.buildPlatform.canExecute stdenv.hostPlatform;
in
rustPlatform.buildRustPackage {
  pname = "nix-cache-login";
  inherit (cargoToml.package) version;

  # Only what `cargo build` reads, and the systemd units installed below: changes to docs,
  # Nix files, the node test provider under tests/idp or the integration tests do not
  # rebuild the package.
  src = lib.fileset.toSource {
    root = ./.;
    fileset = lib.fileset.unions [
      ./Cargo.toml
      ./Cargo.lock
      ./src
      (lib.fileset.maybeMissing ./build.rs)
      ./systemd/nix-cache-login-bridge.socket
      ./systemd/nix-cache-login-bridge.service
    ];
  };

  cargoLock.lockFile = ./Cargo.lock;

  nativeBuildInputs = [ installShellFiles ];

  # The tests under tests/ need the network, a browser, node or nix: none of them is in the
  # build sandbox. The unit tests (some use temporary files) run.
  cargoTestFlags = [ "--lib" ];

  # Those unit tests bind 127.0.0.1, which the macOS build sandbox blocks unless asked.
  __darwinAllowLocalNetworking = true;

  # The daemon bridge's units (docs/nix.md shows how to enable them without NixOS).
  # Completions and the man page come from the binary itself, so they can only be made when
  # the build machine can run what it built (not when cross-compiling).
  postInstall = ''
    for unit in nix-cache-login-bridge.socket nix-cache-login-bridge.service; do
      install -Dm644 "systemd/$unit" "$out/share/systemd/system/$unit"
    done
    substituteInPlace "$out/share/systemd/system/nix-cache-login-bridge.service" \
      --replace-fail "@bindir@" "$out/bin"
  ''
  + lib.optionalString canRunBinary ''
    installShellCompletion --cmd nix-cache-login \
      --bash <("$out/bin/nix-cache-login" completions bash) \
      --fish <("$out/bin/nix-cache-login" completions fish) \
      --zsh <("$out/bin/nix-cache-login" completions zsh)
    "$out/bin/nix-cache-login" man > nix-cache-login.1
    installManPage nix-cache-login.1
  '';

  meta = {
    description = "Log in to an OIDC-protected Nix binary cache and keep a valid token in the netrc Nix reads";
    longDescription = ''
      nix-cache-login authenticates a person (browser or device flow) or a server
      (client credentials) with an OpenID Connect provider such as Keycloak, and keeps a
      valid access token in the netrc file that Nix uses for a private binary cache.
    '';
    license = lib.licenses.gpl3Plus;
    mainProgram = "nix-cache-login";
    platforms = lib.platforms.linux ++ lib.platforms.darwin;
  };
}
