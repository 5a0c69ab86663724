# `import nixpkgs { system; overlays; }` as flake.nix does it, against the stand-ins.
{
  system,
  overlays ? [ ],
  ...
}:
import ../pkgs.nix {
  lib = import ../lib.nix;
  inherit system overlays;
  withOverlay = false;
}
