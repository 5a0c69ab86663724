# The Python test scripts of the VM tests, rendered with the stand-in package set, so that
# check.sh can at least compile them (they can only run under the NixOS test driver, with
# KVM).
let
  inherit (import ./harness.nix) lib stubPkgs;
  pkgs = stubPkgs { };
  workstation = import ../../nixos-test.nix { inherit pkgs lib; };
  server = import ../../nixos-test-server.nix { inherit pkgs lib; };
in
{
  "nixos-test.nix" = workstation.testScript {
    nodes.client.programs.nix-cache-login.package = pkgs.nix-cache-login;
  };
  "nixos-test-server.nix" = server.testScript;
}
