# Short ways to declare the host options in this directory (lib.mkOption underneath), so
# that each file reads as the list of options it mirrors.
{ lib }:

let
  inherit (lib) mkOption types;
  opt = type: default: mkOption { inherit type default; };
in
{
  inherit opt;
  # An option without a default: reading it undefined fails, as in the real module.
  required = type: mkOption { inherit type; };
  nullable = type: opt (types.nullOr type) null;
  bool = opt types.bool;
  str = opt types.str;
  lines = opt types.lines "";
  strList = opt (types.listOf types.str) [ ];
  # attrsOf (submodule module), empty by default.
  submodules = module: opt (types.attrsOf (types.submodule module)) { };
}
