# nixpkgs' real lib (lib/default.nix of nixpkgs 25.11), which tests/nix/check.sh finds and
# passes as NIXPKGS_LIB: the directory that holds lib/default.nix. See tests/nix/README.md.
let
  dir = builtins.getEnv "NIXPKGS_LIB";
  lib =
    if dir == "" then
      throw "NIXPKGS_LIB is not set: run `bash tests/nix/check.sh`, which finds nixpkgs' lib"
    else
      import (/. + dir);
in
# lib.fileset (package.nix's source) asks builtins.readFileType, new in Nix 2.14; Debian's
# Nix 2.8 lacks it. There, lib gets the readDir-based pathType nixpkgs had before, which
# gives the same answers; everything else is lib as it is.
if builtins ? readFileType then
  lib
else
  lib.extend (
    final: prev: {
      filesystem = prev.filesystem // {
        pathType =
          path:
          if dirOf path == path then
            "directory"
          else
            (builtins.readDir (dirOf path)).${baseNameOf path}
              or (throw "lib.filesystem.pathType: ${toString path} does not exist");
      };
    }
  )
