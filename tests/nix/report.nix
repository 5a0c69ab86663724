# eval-modules.nix's results as "ok - NAME" / "not ok - NAME: DETAIL" lines, free of double
# quotes and backslashes, so that check.sh can read nix-instantiate's JSON with sed alone.
let
  clean = builtins.replaceStrings [ "\"" "\\" "\n" ] [ "'" "/" " " ];
in
map (
  c:
  if c.ok then
    "ok - ${clean c.name}"
  else
    "not ok - ${clean c.name}: ${clean (builtins.toJSON c.detail)}"
) (import ./eval-modules.nix)
