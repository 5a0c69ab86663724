# `import nixpkgs { system; overlays; }` as flake.nix does it, against the stand-in package
# set (with nixpkgs' real lib).
{
  system,
  overlays ? [ ],
  ...
}:
import ../pkgs.nix {
  lib = import ../../lib.nix;
  inherit system overlays;
  withOverlay = false;
}
