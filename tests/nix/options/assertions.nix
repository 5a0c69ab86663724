# `assertions` and `warnings`, which NixOS (nixos/modules/misc/assertions.nix) and
# home-manager (modules/misc/assertions.nix) declare alike; imported by nixos.nix and
# home-manager.nix.
{ lib, ... }:

let
  inherit (import ./declare.nix { inherit lib; }) opt strList;
in
{
  options = {
    assertions = opt (lib.types.listOf lib.types.unspecified) [ ] // {
      internal = true;
    };
    warnings = strList // {
      internal = true;
    };
  };
}
